-- DISTINCT applies to COUNT, SUM, AVG, MIN and MAX only.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  units INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (c STRING, f BIGINT) WITH ('connector' = 'print');

INSERT INTO out SELECT customer, FIRST_VALUE(DISTINCT order_id) FROM orders GROUP BY customer;
