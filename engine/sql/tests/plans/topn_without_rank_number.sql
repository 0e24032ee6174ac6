-- Top-N whose SELECT list does not read the row number: the Rank drops it. Other
-- conditions of the WHERE stay a filter above the Rank; rn < N and rn > M bound
-- the range; no PARTITION BY ranks the whole stream.
CREATE TABLE orders (
  id BIGINT,
  cat STRING,
  price INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, price INT) WITH ('connector' = 'print');
CREATE TABLE out2 (id BIGINT, price INT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id, price FROM (
  SELECT id, price, cat, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price ASC NULLS LAST) AS row_num
  FROM orders WHERE price > 0
) t WHERE t.row_num < 4 AND cat <> 'x';

INSERT INTO out2
SELECT id, price FROM (
  SELECT id, price, ROW_NUMBER() OVER (ORDER BY price DESC) AS rn FROM orders
) WHERE rn > 1 AND rn <= 5;
