-- A Flink scalar function that Sluice does not implement.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (customer STRING, total DECIMAL(10, 2)) WITH ('connector' = 'print');

INSERT INTO out SELECT CAST(RAND_INTEGER(10) AS STRING), total FROM orders;
