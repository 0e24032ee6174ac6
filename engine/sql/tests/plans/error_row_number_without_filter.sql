-- ROW_NUMBER() without a condition on its result is not a Top-N.
CREATE TABLE orders (id BIGINT, cat STRING, price INT) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, cat STRING, price INT, rn BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id, cat, price, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price) AS rn FROM orders;
