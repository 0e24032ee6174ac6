-- Window joins: two window TVFs (or window aggregations) with the same window, joined on
-- window_start and window_end plus keys, INNER / LEFT / FULL, with a residual, without other keys,
-- and over window aggregations. The output is append-only and keeps the left input's time
-- attribute. Only one of the two window equalities, or different windows, is a regular join, as
-- in Flink.
CREATE TABLE l (num INT, id STRING, row_time TIMESTAMP(3), WATERMARK FOR row_time AS row_time - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen');
CREATE TABLE r (num INT, id STRING, row_time TIMESTAMP(3), WATERMARK FOR row_time AS row_time - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen');
CREATE TABLE full_out (l_num INT, l_id STRING, r_num INT, r_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3))
WITH ('connector' = 'print');
CREATE TABLE pairs (l_id STRING, r_id STRING, window_end TIMESTAMP(3)) WITH ('connector' = 'print');
CREATE TABLE counts (num INT, l_cnt BIGINT, r_cnt BIGINT, window_start TIMESTAMP(3)) WITH ('connector' = 'print');
CREATE TABLE regular (l_id STRING, r_id STRING) WITH ('connector' = 'print');
CREATE TABLE rewindowed (window_start TIMESTAMP(3), pairs BIGINT) WITH ('connector' = 'print');

CREATE VIEW joined AS
SELECT L.window_time AS t FROM (SELECT * FROM TABLE(TUMBLE(TABLE l, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) L
JOIN (SELECT * FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) R
ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;

EXECUTE STATEMENT SET BEGIN
INSERT INTO full_out
SELECT L.num, L.id, R.num, R.id, COALESCE(L.window_start, R.window_start), COALESCE(L.window_end, R.window_end)
FROM (SELECT * FROM TABLE(TUMBLE(TABLE l, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) L
FULL JOIN (SELECT * FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) R
ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;
INSERT INTO pairs
SELECT L.id, R.id, L.window_end
FROM TABLE(HOP(TABLE l, DESCRIPTOR(row_time), INTERVAL '5' MINUTES, INTERVAL '10' MINUTES)) AS L
LEFT JOIN TABLE(HOP(TABLE r, DESCRIPTOR(row_time), INTERVAL '5' MINUTES, INTERVAL '10' MINUTES)) AS R
ON L.window_start = R.window_start AND L.window_end = R.window_end AND L.id <> R.id;
INSERT INTO counts
SELECT L.num, L.cnt, R.cnt, L.window_start
FROM (SELECT num, window_start, window_end, COUNT(*) AS cnt
      FROM TABLE(CUMULATE(TABLE l, DESCRIPTOR(row_time), INTERVAL '1' MINUTES, INTERVAL '3' MINUTES))
      GROUP BY num, window_start, window_end) L
JOIN (SELECT num, window_start, window_end, COUNT(*) AS cnt
      FROM TABLE(CUMULATE(TABLE r, DESCRIPTOR(row_time), INTERVAL '1' MINUTES, INTERVAL '3' MINUTES))
      GROUP BY num, window_start, window_end) R
ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;
INSERT INTO regular
SELECT L.id, R.id
FROM (SELECT * FROM TABLE(TUMBLE(TABLE l, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) L
JOIN (SELECT * FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(row_time), INTERVAL '10' MINUTES))) R
ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;
INSERT INTO rewindowed
SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE joined, DESCRIPTOR(t), INTERVAL '10' MINUTES))
GROUP BY window_start, window_end;
END;
