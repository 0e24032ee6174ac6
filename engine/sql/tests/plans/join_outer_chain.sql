-- A chain of outer joins over a view and a subquery: INT = BIGINT keys are
-- cast to one type, a condition on both sides is a residual, and the output
-- is updating (padded rows get retracted). The state TTL bounds the rows each side keeps.
SET 'table.exec.state.ttl' = '1 h';

CREATE TABLE orders (
  order_id BIGINT,
  customer INT,
  product STRING,
  total DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE customers (id BIGINT, name STRING, credit DECIMAL(10, 2)) WITH ('connector' = 'datagen');

CREATE TABLE products (sku STRING, title STRING) WITH ('connector' = 'datagen');

CREATE TABLE out (order_id BIGINT, name STRING, title STRING) WITH ('connector' = 'print');

CREATE VIEW big_orders AS SELECT order_id, customer, product, total FROM orders WHERE total > 10;

INSERT INTO out
SELECT o.order_id, c.name, p.title
FROM big_orders AS o
LEFT JOIN customers AS c ON o.customer = c.id AND o.total < c.credit
FULL OUTER JOIN (SELECT sku, UPPER(title) AS title FROM products) AS p ON p.sku = o.product;
