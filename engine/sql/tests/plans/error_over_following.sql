-- A streaming OVER window ends at the current row.
CREATE TABLE orders (id BIGINT, cat STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, s INT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id, SUM(price) OVER w
FROM orders
WINDOW w AS (PARTITION BY cat ORDER BY ts ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING);
