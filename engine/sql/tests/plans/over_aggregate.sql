-- OVER aggregations: RANGE and ROWS frames, a named window, unpartitioned,
-- unbounded, an OVER call inside an expression; the time attribute is kept.
CREATE TABLE Orders (
  order_id BIGINT, product STRING, amount INT, order_time TIMESTAMP(3),
  WATERMARK FOR order_time AS order_time - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen');
CREATE TABLE hour_sums (order_id BIGINT, order_time TIMESTAMP(3), amount INT, one_hour_prod_amount_sum INT, cnt BIGINT)
WITH ('connector' = 'print');
CREATE TABLE last_ten (order_id BIGINT, cnt BIGINT, lo INT, hi INT) WITH ('connector' = 'print');
CREATE TABLE running (order_id BIGINT, avg_amount INT, share DOUBLE) WITH ('connector' = 'print');

EXECUTE STATEMENT SET BEGIN
INSERT INTO hour_sums
SELECT order_id, order_time, amount,
  SUM(amount) OVER (PARTITION BY product ORDER BY order_time RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW) AS one_hour_prod_amount_sum,
  COUNT(*) OVER (PARTITION BY product ORDER BY order_time RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW) AS cnt
FROM Orders;
INSERT INTO last_ten
SELECT order_id, COUNT(*) OVER w, MIN(amount) OVER w, MAX(amount) OVER w
FROM Orders
WHERE amount > 0
WINDOW w AS (PARTITION BY product ORDER BY order_time ROWS BETWEEN 10 PRECEDING AND CURRENT ROW);
INSERT INTO running
SELECT order_id, AVG(amount) OVER w, CAST(amount AS DOUBLE) / SUM(amount) OVER w
FROM Orders
WINDOW w AS (ORDER BY order_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);
END;
