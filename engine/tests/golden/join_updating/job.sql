-- compare: materialized
-- Joins over an updating input: per-customer totals of a non-windowed GROUP BY (which retracts
-- each total as it changes) inner-joined with customers (the join forwards -U/+U), and
-- customers LEFT JOINed with the totals (the updates retract and re-emit the joined rows; a
-- customer without orders stays padded), then a GROUP BY over the LEFT JOIN's output (an
-- aggregation consuming the join's retractions). The changelogs depend on how the sources
-- interleave; the final tables do not.
CREATE TABLE orders (
  customer STRING,
  amount INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE customers (
  name STRING,
  city STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/customers.json',
  'format' = 'json'
);

CREATE TABLE big_spenders (customer STRING, total INT, n BIGINT, city STRING)
WITH ('connector' = 'print', 'print-identifier' = 'big_spenders');

CREATE TABLE all_customers (name STRING, city STRING, total INT)
WITH ('connector' = 'print', 'print-identifier' = 'all_customers');

CREATE TABLE per_city (city STRING, customers BIGINT, revenue INT)
WITH ('connector' = 'print', 'print-identifier' = 'per_city');

CREATE VIEW totals AS SELECT customer, SUM(amount) AS total, COUNT(*) AS n FROM orders GROUP BY customer;

CREATE VIEW with_totals AS
SELECT c.name, c.city, t.total FROM customers AS c LEFT JOIN totals AS t ON c.name = t.customer;

EXECUTE STATEMENT SET BEGIN
INSERT INTO big_spenders
SELECT t.customer, t.total, t.n, c.city FROM totals AS t JOIN customers AS c ON t.customer = c.name WHERE t.total > 20;
INSERT INTO all_customers SELECT * FROM with_totals;
INSERT INTO per_city SELECT city, COUNT(*), SUM(total) FROM with_totals GROUP BY city;
END;
