-- compare: changelog
-- Non-windowed GROUP BY: every aggregate over INT, DOUBLE, DECIMAL with NULLs,
-- COUNT(DISTINCT), WHERE and HAVING, a key expression, and an aggregate
-- that does not change (no update emitted).
CREATE TABLE orders (
  id BIGINT,
  shop STRING,
  usr STRING,
  qty INT,
  price DOUBLE,
  amount DECIMAL(10, 2)
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE shop_totals (
  shop STRING,
  cnt BIGINT,
  cnt_qty BIGINT,
  sum_qty INT,
  min_price DOUBLE,
  max_amount DECIMAL(10, 2),
  avg_qty INT,
  avg_amount DECIMAL(38, 6),
  sum_price DOUBLE,
  users BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'shop_totals');

CREATE TABLE big_shops (
  shop_upper STRING,
  total INT,
  max_id BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'big_shops');

CREATE TABLE first_ids (
  shop STRING,
  first_id BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'first_ids');

INSERT INTO shop_totals
SELECT shop, COUNT(*), COUNT(qty), SUM(qty), MIN(price), MAX(amount), AVG(qty), AVG(amount), SUM(price),
  COUNT(DISTINCT usr)
FROM orders
GROUP BY shop;

INSERT INTO big_shops
SELECT UPPER(shop), SUM(qty) AS total, MAX(id)
FROM orders
WHERE qty > 1
GROUP BY UPPER(shop)
HAVING COUNT(*) >= 3;

INSERT INTO first_ids
SELECT shop, MIN(id) FROM orders GROUP BY shop;
