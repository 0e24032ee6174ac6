-- STDDEV in an OVER aggregation.
CREATE TABLE orders (
  customer STRING,
  units INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');
CREATE TABLE out (c STRING, s INT) WITH ('connector' = 'print');

INSERT INTO out
SELECT customer, STDDEV(units) OVER (PARTITION BY customer ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)
FROM orders;
