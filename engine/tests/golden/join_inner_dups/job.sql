-- compare: materialized
-- An inner join of two append-only tables with duplicate keys on both sides (every pair is
-- emitted), identical duplicate rows, a null key (matches nothing), INT = BIGINT keys, and a
-- residual condition over both sides. Append-only output (+I only); the order of rows depends
-- on how Flink interleaves its two sources, so the final tables are compared.
CREATE TABLE orders (
  order_id BIGINT,
  customer INT,
  amount DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE customers (
  id BIGINT,
  name STRING,
  max_amount DECIMAL(10, 2)
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/customers.json',
  'format' = 'json'
);

CREATE TABLE enriched (
  order_id BIGINT,
  customer INT,
  name STRING,
  amount DECIMAL(10, 2),
  ts TIMESTAMP(3)
) WITH ('connector' = 'print', 'print-identifier' = 'enriched');

INSERT INTO enriched
SELECT o.order_id, o.customer, c.name, o.amount, o.ts
FROM orders AS o
JOIN customers AS c ON o.customer = c.id AND o.amount <= c.max_amount;
