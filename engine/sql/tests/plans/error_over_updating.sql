-- An OVER aggregation consumes only inserts.
CREATE TABLE orders (id BIGINT, cat STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE out (cat STRING, c BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT cat, COUNT(*) OVER (ORDER BY ts)
FROM (SELECT cat, MAX(ts) AS ts FROM orders GROUP BY cat);
