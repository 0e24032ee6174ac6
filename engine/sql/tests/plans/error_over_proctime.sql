-- OVER windows on processing time are refused with their own message.
CREATE TABLE orders (id BIGINT, cat STRING, price INT, pt AS PROCTIME()) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, s INT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id, SUM(price) OVER (PARTITION BY cat ORDER BY pt ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM orders;
