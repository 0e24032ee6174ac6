-- A WHERE clause that is not a BOOLEAN condition.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (customer STRING, total DECIMAL(10, 2)) WITH ('connector' = 'print');

INSERT INTO out SELECT customer, total FROM orders WHERE total;
