-- compare: materialized
-- OVER aggregations on event time (watermark = order_time - 2 s, advanced after every row):
-- RANGE 10 s bounded (peers at equal times share a result; old rows retracted, MIN/MAX too),
-- ROWS 2 PRECEDING (equal times in arrival order; COUNT(DISTINCT) retracted too),
-- unpartitioned ROWS UNBOUNDED, the default frame (RANGE UNBOUNDED), and a TUMBLE over an
-- OVER aggregation's output (its time attribute is kept). Late rows: an unbounded frame drops
-- rows at or behind the watermark (rows 8, 9, 16, 18 to 20, 22); a bounded one drops rows at or
-- before the last timer its partition fired (row 9; row 20 under ROWS, C having fired 15 s)
-- and keeps row 8 (behind the watermark, after A's last time), row 16 (a new partition),
-- row 19 (B's stale RANGE cleanup timer fired at 24.001 s, before 25 s) and, under RANGE,
-- row 20 (C's state was cleaned up at 30.001 s, which resets its lateness). Every output
-- row is an insert, but rows of different partitions fired by one watermark come in timer
-- order, which Flink does not fix, so the final tables are compared.
CREATE TABLE orders (
  order_id BIGINT,
  product STRING,
  amount INT,
  price DOUBLE,
  order_time TIMESTAMP(3),
  WATERMARK FOR order_time AS order_time - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE range_sums (
  order_id BIGINT, product STRING, order_time TIMESTAMP(3), amount INT,
  s INT, c BIGINT, lo INT, hi INT, avg_price DOUBLE
) WITH ('connector' = 'print', 'print-identifier' = 'range_sums');

CREATE TABLE rows_last3 (order_id BIGINT, product STRING, c BIGINT, s INT, lo DOUBLE, hi INT, kinds BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'rows_last3');

CREATE TABLE running_all (order_id BIGINT, c BIGINT, s INT, hi DOUBLE, share DOUBLE)
WITH ('connector' = 'print', 'print-identifier' = 'running_all');

CREATE TABLE running_range (order_id BIGINT, product STRING, s INT, lo INT, avg_amount INT)
WITH ('connector' = 'print', 'print-identifier' = 'running_range');

CREATE TABLE per_10s (window_start TIMESTAMP(3), product STRING, top_total INT, n BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'per_10s');

CREATE VIEW totals AS
SELECT order_id, product, order_time, SUM(amount) OVER (PARTITION BY product ORDER BY order_time) AS total
FROM orders;

EXECUTE STATEMENT SET BEGIN
INSERT INTO range_sums
SELECT order_id, product, order_time, amount,
  SUM(amount) OVER w, COUNT(*) OVER w, MIN(amount) OVER w, MAX(amount) OVER w, AVG(price) OVER w
FROM orders
WINDOW w AS (PARTITION BY product ORDER BY order_time RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW);
INSERT INTO rows_last3
SELECT order_id, product,
  COUNT(*) OVER (PARTITION BY product ORDER BY order_time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),
  SUM(amount) OVER (PARTITION BY product ORDER BY order_time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),
  MIN(price) OVER (PARTITION BY product ORDER BY order_time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),
  MAX(amount) OVER (PARTITION BY product ORDER BY order_time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW),
  COUNT(DISTINCT amount % 3) OVER (PARTITION BY product ORDER BY order_time ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)
FROM orders;
INSERT INTO running_all
SELECT order_id, COUNT(*) OVER w, SUM(amount) OVER w, MAX(price) OVER w, price / SUM(price) OVER w
FROM orders
WINDOW w AS (ORDER BY order_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
INSERT INTO running_range
SELECT order_id, product, SUM(amount) OVER w, MIN(amount) OVER w, AVG(amount) OVER w
FROM orders
WINDOW w AS (PARTITION BY product ORDER BY order_time);
INSERT INTO per_10s
SELECT window_start, product, MAX(total), COUNT(*)
FROM TABLE(TUMBLE(TABLE totals, DESCRIPTOR(order_time), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, product;
END;
