-- One group window per GROUP BY.
CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '4' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '100');
CREATE TABLE o (a BIGINT, b TIMESTAMP(3)) WITH ('connector' = 'print');
INSERT INTO o SELECT COUNT(*), TUMBLE_END(ts, INTERVAL '1' MINUTE) FROM bid GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE), HOP(ts, INTERVAL '1' MINUTE, INTERVAL '2' MINUTE);
