-- All OVER aggregates of one SELECT must use the same window, as in Flink.
CREATE TABLE orders (id BIGINT, cat STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, s INT, c BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id,
  SUM(price) OVER (PARTITION BY cat ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),
  COUNT(*) OVER (PARTITION BY cat ORDER BY ts ROWS BETWEEN 3 PRECEDING AND CURRENT ROW)
FROM orders;
