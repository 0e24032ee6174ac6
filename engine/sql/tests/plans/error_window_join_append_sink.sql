-- Joined on window_start only (not window_end too): a regular join, as in Flink, so its outer
-- join is updating and an append-only sink refuses it.
CREATE TABLE l (num INT, row_time TIMESTAMP(3), WATERMARK FOR row_time AS row_time - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen');
CREATE TABLE r (num INT, row_time TIMESTAMP(3), WATERMARK FOR row_time AS row_time - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen');
CREATE TABLE out1 (a INT, b INT) WITH ('connector' = 'filesystem', 'path' = '/tmp/out', 'format' = 'json');
INSERT INTO out1
SELECT L.num, R.num
FROM (SELECT * FROM TABLE(TUMBLE(TABLE l, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) L
LEFT JOIN (SELECT * FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) R
ON L.num = R.num AND L.window_start = R.window_start;
