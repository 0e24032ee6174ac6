-- Top-3 per category with the row number in the output: a Rank that keeps it,
-- updating, behind a projection in SELECT-list order.
CREATE TABLE orders (
  id BIGINT,
  cat STRING,
  price INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'datagen');
CREATE TABLE out (cat STRING, rn BIGINT, id BIGINT, price INT) WITH ('connector' = 'print');

INSERT INTO out
SELECT cat, rn, id, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price DESC, id) AS rn
  FROM orders
) WHERE rn <= 3;
