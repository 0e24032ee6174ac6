-- An OVER window must be ordered by the time attribute.
CREATE TABLE orders (id BIGINT, cat STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, cat STRING, price INT, total INT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id, cat, price, SUM(price) OVER (PARTITION BY cat ORDER BY id) FROM orders;
