-- GROUPING SETS, ROLLUP and CUBE: one aggregation per grouping set, in a UNION ALL; a key
-- a set does not group by is a NULL of its type, GROUPING/GROUPING_ID the set's bits.
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '4' SECOND) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (channel STRING, bidder BIGINT, n BIGINT, g BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT channel, bidder, COUNT(*), GROUPING_ID(channel, bidder) FROM bid GROUP BY ROLLUP (channel, bidder);
INSERT INTO o SELECT channel, CAST(NULL AS BIGINT), SUM(price), GROUPING(channel) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end, GROUPING SETS ((channel), ());
