-- An inner join of two append-only tables: append-only output, keys hashed on both sides.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (customer STRING, total DECIMAL(10, 2)) WITH ('connector' = 'print');

CREATE TABLE customers (name STRING, city STRING) WITH ('connector' = 'datagen');

INSERT INTO out
SELECT o.customer, o.total
FROM orders AS o JOIN customers AS c ON o.customer = c.name;
