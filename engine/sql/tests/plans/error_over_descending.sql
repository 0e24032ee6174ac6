-- A streaming OVER window is ordered by event time ascending.
CREATE TABLE orders (id BIGINT, cat STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, s INT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id, SUM(price) OVER (PARTITION BY cat ORDER BY ts DESC) FROM orders;
