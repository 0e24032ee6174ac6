-- GROUPING takes GROUP BY keys.
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '4' SECOND) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (channel STRING, bidder BIGINT, n BIGINT, g BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT channel, bidder, COUNT(*), GROUPING(price) FROM bid GROUP BY CUBE (channel, bidder);
