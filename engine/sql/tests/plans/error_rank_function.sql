-- RANK() is not a streaming Top-N function (Flink runs ROW_NUMBER() only).
CREATE TABLE orders (id BIGINT, cat STRING, price INT) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, cat STRING, price INT, rn BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT * FROM (
  SELECT *, RANK() OVER (PARTITION BY cat ORDER BY price) AS rn FROM orders
) WHERE rn <= 3;
