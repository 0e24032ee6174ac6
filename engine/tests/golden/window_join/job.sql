-- compare: materialized
-- Window joins (Flink's WindowJoinOperator): two window TVFs with the same window joined on
-- window_start and window_end, plus keys. Rows of a key and window meet when the watermark
-- passes the window's end; an outer side's rows without a match are padded; rows of windows
-- that have fired are late and dropped (L6late, R1late, late in every window they belong to).
-- Covered: TUMBLE FULL JOIN with unmatched rows on both sides and duplicates; HOP INNER JOIN
-- without keys (a residual only: one subtask, as in Flink); CUMULATE LEFT JOIN; window
-- aggregations on both sides RIGHT JOINed; and a window aggregation over a window join's
-- output on the left window_time, which stays a time attribute. Both sides come from one
-- source (filtered views), so lateness does not depend on how two sources interleave. The
-- output is append-only, but the order in which windows of equal end fire differs (keys,
-- subtasks), so final tables are compared.
-- Records are flushed downstream at once, so that both sides' watermarks reach the joins
-- together and lateness is the same on every run.
SET 'execution.buffer-timeout' = '0 ms';

CREATE TABLE events (
  side STRING,
  num INT,
  id STRING,
  row_time TIMESTAMP(3),
  WATERMARK FOR row_time AS row_time - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/events.json',
  'format' = 'json'
);

CREATE VIEW LeftTable AS SELECT num, id, row_time FROM events WHERE side = 'L';
CREATE VIEW RightTable AS SELECT num, id, row_time FROM events WHERE side = 'R';

CREATE TABLE tumble_full (l_num INT, l_id STRING, r_num INT, r_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'tumble_full');

CREATE TABLE hop_inner (l_id STRING, r_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'hop_inner');

CREATE TABLE cumulate_left (l_id STRING, r_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'cumulate_left');

CREATE TABLE agg_right (num INT, l_cnt BIGINT, r_cnt BIGINT, window_start TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'agg_right');

CREATE TABLE rewindowed (window_start TIMESTAMP(3), window_end TIMESTAMP(3), pairs BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'rewindowed');

CREATE VIEW tumble_pairs AS
SELECT L.id AS l_id, R.id AS r_id, L.window_time AS t
FROM (SELECT * FROM TABLE(TUMBLE(TABLE LeftTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) L
JOIN (SELECT * FROM TABLE(TUMBLE(TABLE RightTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) R
ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;

EXECUTE STATEMENT SET BEGIN
INSERT INTO tumble_full
SELECT L.num AS l_num, L.id AS l_id, R.num AS r_num, R.id AS r_id,
       COALESCE(L.window_start, R.window_start) AS window_start, COALESCE(L.window_end, R.window_end) AS window_end
FROM (SELECT * FROM TABLE(TUMBLE(TABLE LeftTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) L
FULL JOIN (SELECT * FROM TABLE(TUMBLE(TABLE RightTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) R
ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;
INSERT INTO hop_inner
SELECT L.id, R.id, L.window_start, L.window_end
FROM (SELECT * FROM TABLE(HOP(TABLE LeftTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES, INTERVAL '10' MINUTES))) L
JOIN (SELECT * FROM TABLE(HOP(TABLE RightTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES, INTERVAL '10' MINUTES))) R
ON L.window_start = R.window_start AND L.window_end = R.window_end AND L.num - R.num = 1;
INSERT INTO cumulate_left
SELECT L.id, R.id, L.window_start, L.window_end
FROM (SELECT * FROM TABLE(CUMULATE(TABLE LeftTable, DESCRIPTOR(row_time), INTERVAL '2' MINUTES, INTERVAL '6' MINUTES))) L
LEFT JOIN (SELECT * FROM TABLE(CUMULATE(TABLE RightTable, DESCRIPTOR(row_time), INTERVAL '2' MINUTES, INTERVAL '6' MINUTES))) R
ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;
INSERT INTO agg_right
SELECT R.num, L.cnt, R.cnt, R.window_start
FROM (SELECT num, window_start, window_end, COUNT(*) AS cnt
      FROM TABLE(TUMBLE(TABLE LeftTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))
      GROUP BY num, window_start, window_end) L
RIGHT JOIN (SELECT num, window_start, window_end, COUNT(*) AS cnt
      FROM TABLE(TUMBLE(TABLE RightTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))
      GROUP BY num, window_start, window_end) R
ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;
INSERT INTO rewindowed
SELECT window_start, window_end, COUNT(*) FROM TABLE(TUMBLE(TABLE tumble_pairs, DESCRIPTOR(t), INTERVAL '10' MINUTES))
GROUP BY window_start, window_end;
END;
