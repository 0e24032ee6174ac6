-- A window function outside a SELECT list.
CREATE TABLE orders (id BIGINT, cat STRING, price INT) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, cat STRING, price INT, rn BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id, cat, price, 1 FROM orders WHERE ROW_NUMBER() OVER (ORDER BY price) <= 3;
