-- VAR_SAMP(DISTINCT ...) is not supported.
CREATE TABLE orders (
  customer STRING,
  units INT
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');
CREATE TABLE out (c STRING, v INT) WITH ('connector' = 'print');

INSERT INTO out
SELECT customer, VAR_SAMP(DISTINCT units) FROM orders GROUP BY customer;
