-- ROW_NUMBER() inside an expression.
CREATE TABLE orders (id BIGINT, cat STRING, price INT) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, cat STRING, price INT, rn BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT * FROM (
  SELECT id, cat, price, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price) * 10 AS rn FROM orders
) WHERE rn <= 30;
