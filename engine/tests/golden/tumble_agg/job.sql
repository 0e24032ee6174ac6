-- 10 s tumbling windows per shop: COUNT/SUM/MIN/MAX/AVG over INT, BIGINT, DOUBLE, DECIMAL.
CREATE TABLE sales (
  id BIGINT,
  shop STRING,
  units INT,
  qty BIGINT,
  price DOUBLE,
  amount DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/sales.json',
  'format' = 'json'
);

CREATE TABLE shop_stats (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_time TIMESTAMP(3),
  shop STRING,
  cnt BIGINT,
  sum_units INT,
  sum_qty BIGINT,
  sum_price DOUBLE,
  sum_amount DECIMAL(38, 2),
  min_units INT,
  max_units INT,
  min_price DOUBLE,
  max_price DOUBLE,
  min_amount DECIMAL(10, 2),
  max_amount DECIMAL(10, 2),
  avg_units INT,
  avg_qty BIGINT,
  avg_price DOUBLE,
  avg_amount DECIMAL(38, 6),
  min_id BIGINT,
  max_id BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/shop_stats',
  'format' = 'json'
);

INSERT INTO shop_stats
SELECT
  window_start,
  window_end,
  window_time,
  shop,
  COUNT(*) AS cnt,
  SUM(units) AS sum_units,
  SUM(qty) AS sum_qty,
  SUM(price) AS sum_price,
  SUM(amount) AS sum_amount,
  MIN(units) AS min_units,
  MAX(units) AS max_units,
  MIN(price) AS min_price,
  MAX(price) AS max_price,
  MIN(amount) AS min_amount,
  MAX(amount) AS max_amount,
  AVG(units) AS avg_units,
  AVG(qty) AS avg_qty,
  AVG(price) AS avg_price,
  AVG(amount) AS avg_amount,
  MIN(id) AS min_id,
  MAX(id) AS max_id
FROM TABLE(TUMBLE(TABLE sales, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, window_time, shop;
