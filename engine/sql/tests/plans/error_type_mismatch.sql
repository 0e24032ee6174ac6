-- A query column whose type the sink column cannot take without a CAST.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (customer STRING, total DECIMAL(10, 2)) WITH ('connector' = 'print');

INSERT INTO out SELECT customer, ts FROM orders;
