-- compare: changelog
-- Top-3 most expensive orders per category, with the rank number in the output:
-- rows entering the top 3 shift the ranks of those below them (-U/+U per shifted row).
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

CREATE TABLE top3 (
  cat STRING,
  rn BIGINT,
  id BIGINT,
  price INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'top3'
);

INSERT INTO top3
SELECT cat, rn, id, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price DESC) AS rn
  FROM orders
) WHERE rn <= 3;
