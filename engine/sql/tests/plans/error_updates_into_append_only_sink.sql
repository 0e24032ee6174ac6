-- A non-windowed GROUP BY updates its results; a filesystem sink only appends.
CREATE TABLE orders (customer STRING, total DECIMAL(10, 2))
WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (customer STRING, total DECIMAL(38, 2))
WITH ('connector' = 'filesystem', 'path' = '/data/out', 'format' = 'json');

INSERT INTO out
SELECT customer, SUM(total)
FROM orders
GROUP BY customer;
