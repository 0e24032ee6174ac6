-- OVER aggregations are not supported yet.
CREATE TABLE orders (id BIGINT, cat STRING, price INT) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, cat STRING, price INT, rn BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id, cat, price, SUM(price) OVER (PARTITION BY cat ORDER BY id) FROM orders;
