-- FILTER (WHERE ...) does not combine with OVER, as in Flink.
CREATE TABLE orders (id BIGINT, cat STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, c BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id, COUNT(*) FILTER (WHERE price > 3) OVER (PARTITION BY cat ORDER BY ts ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)
FROM orders;
