-- compare: changelog
-- Top-N without the rank number in the output: only rows entering (+I) and leaving (-D)
-- the top N are emitted. Also rn < N, and a Top-N over the whole stream (no PARTITION BY).
CREATE TABLE orders (
  id BIGINT,
  cat STRING,
  price INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE cheapest (
  id BIGINT,
  cat STRING,
  price INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'cheapest'
);

CREATE TABLE global_top (
  id BIGINT,
  price INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'global_top'
);

INSERT INTO cheapest
SELECT id, cat, price FROM (
  SELECT id, cat, price, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price ASC, id DESC) AS row_num
  FROM orders
) WHERE row_num < 3;

INSERT INTO global_top
SELECT id, price FROM (
  SELECT id, price, ROW_NUMBER() OVER (ORDER BY price DESC) AS rn
  FROM orders WHERE price > 5
) WHERE rn <= 2;
