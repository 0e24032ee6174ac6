-- A SESSION window TVF as a join input (Sluice supports SESSION only under an aggregation).
CREATE TABLE l (num INT, row_time TIMESTAMP(3), WATERMARK FOR row_time AS row_time - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen');
CREATE TABLE r (num INT, row_time TIMESTAMP(3), WATERMARK FOR row_time AS row_time - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen');
CREATE TABLE out1 (a INT, b INT) WITH ('connector' = 'print');
INSERT INTO out1
SELECT L.num, R.num
FROM TABLE(SESSION(TABLE l, DESCRIPTOR(row_time), INTERVAL '5' MINUTES)) AS L
JOIN TABLE(SESSION(TABLE r, DESCRIPTOR(row_time), INTERVAL '5' MINUTES)) AS R
ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;
