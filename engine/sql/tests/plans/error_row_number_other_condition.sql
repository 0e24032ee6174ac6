-- A condition on the row number that is not a bound.
CREATE TABLE orders (id BIGINT, cat STRING, price INT) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, cat STRING, price INT, rn BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT * FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price) AS rn FROM orders
) WHERE rn <= 3 AND rn <> 2;
