-- LISTAGG's separator must be a literal, as in Flink.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  units INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (c STRING, l STRING) WITH ('connector' = 'print');

INSERT INTO out SELECT units, LISTAGG(customer, customer) FROM orders GROUP BY units;
