-- FOR SYSTEM_TIME AS OF outside the right side of a join.
CREATE TABLE orders (id BIGINT, cur STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE rates (cur STRING, rate DOUBLE, uts TIMESTAMP(3), WATERMARK FOR uts AS uts, PRIMARY KEY (cur) NOT ENFORCED) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, rate DOUBLE) WITH ('connector' = 'print');

INSERT INTO out SELECT 1, r.rate FROM rates FOR SYSTEM_TIME AS OF TIMESTAMP '2024-01-01 00:00:00' AS r;
