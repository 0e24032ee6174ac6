-- A non-windowed GROUP BY with HAVING (an updating result keyed by customer),
-- and an aggregation of its updates.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (customer STRING, total DECIMAL(38, 2), n BIGINT) WITH ('connector' = 'print');

CREATE TABLE buckets (n BIGINT, customers BIGINT, biggest DECIMAL(38, 2)) WITH ('connector' = 'print');

CREATE VIEW per_customer AS
SELECT customer, SUM(total) AS total, COUNT(*) AS n FROM orders WHERE total > 0 GROUP BY customer;

INSERT INTO out SELECT customer, total, n FROM per_customer WHERE n > 1;

INSERT INTO buckets SELECT n, COUNT(*), MAX(total) FROM per_customer GROUP BY n HAVING COUNT(*) > 1;
