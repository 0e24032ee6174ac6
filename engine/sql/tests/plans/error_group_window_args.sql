-- A group window's auxiliary function must repeat the GROUP BY's window call.
CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '4' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '100');
CREATE TABLE o (a BIGINT, b TIMESTAMP(3)) WITH ('connector' = 'print');
INSERT INTO o SELECT COUNT(*), TUMBLE_START(ts, INTERVAL '2' MINUTE) FROM bid GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE);
