-- LISTAGG accepts strings only, as in Flink.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  units INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (c STRING, l STRING) WITH ('connector' = 'print');

INSERT INTO out SELECT customer, LISTAGG(units) FROM orders GROUP BY customer;
