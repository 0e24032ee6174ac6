-- A window aggregation over a window join's output, grouped by its window_start and
-- window_end: Flink keeps it a window aggregation attached to the join's windows
-- (WindowAttachedWindowingStrategy; verified with EXPLAIN), append-only and fired by the
-- watermark, rather than an updating aggregation. The filesystem sinks are append-only, so an
-- updating plan would be refused. Covered: TUMBLE INNER JOIN grouped by window and a key;
-- HOP INNER JOIN grouped by window alone (each row counted in its own window only); CUMULATE
-- LEFT JOIN (the left side's window columns, never null-padded) with a COUNT of the padded
-- side; a window aggregation over a window aggregation's output, grouped by its windows; over
-- a filtered HOP window TVF in a subquery; and over a Window Top-N.
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

CREATE TABLE tumble_counts (window_start TIMESTAMP(3), window_end TIMESTAMP(3), num INT, pairs BIGINT, ids STRING)
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/tumble_counts', 'format' = 'csv');

CREATE TABLE hop_counts (window_start TIMESTAMP(3), window_end TIMESTAMP(3), window_time TIMESTAMP(3), pairs BIGINT, hi INT)
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/hop_counts', 'format' = 'csv');

CREATE TABLE cumulate_counts (window_start TIMESTAMP(3), window_end TIMESTAMP(3), lefts BIGINT, matched BIGINT)
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/cumulate_counts', 'format' = 'csv');

CREATE TABLE regrouped (window_start TIMESTAMP(3), window_end TIMESTAMP(3), nums BIGINT, total BIGINT)
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/regrouped', 'format' = 'csv');

CREATE TABLE hop_filtered (window_start TIMESTAMP(3), window_end TIMESTAMP(3), n BIGINT, lo INT)
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/hop_filtered', 'format' = 'csv');

CREATE TABLE top2_sums (window_start TIMESTAMP(3), window_end TIMESTAMP(3), n BIGINT, total INT)
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/top2_sums', 'format' = 'csv');

CREATE VIEW tumble_pairs AS
SELECT L.num, L.id AS l_id, R.id AS r_id, L.window_start, L.window_end
FROM (SELECT * FROM TABLE(TUMBLE(TABLE LeftTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) L
JOIN (SELECT * FROM TABLE(TUMBLE(TABLE RightTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))) R
ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end;

CREATE VIEW per_num AS
SELECT window_start, window_end, num, COUNT(*) AS cnt
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))
GROUP BY window_start, window_end, num;

EXECUTE STATEMENT SET BEGIN
INSERT INTO tumble_counts
SELECT window_start, window_end, num, COUNT(*), MAX(r_id)
FROM tumble_pairs
GROUP BY window_start, window_end, num;
INSERT INTO hop_counts
SELECT window_start, window_end, window_time, COUNT(*), MAX(l_num)
FROM (
  SELECT L.num AS l_num, L.window_start, L.window_end, L.window_time
  FROM (SELECT * FROM TABLE(HOP(TABLE LeftTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES, INTERVAL '10' MINUTES))) L
  JOIN (SELECT * FROM TABLE(HOP(TABLE RightTable, DESCRIPTOR(row_time), INTERVAL '5' MINUTES, INTERVAL '10' MINUTES))) R
  ON L.window_start = R.window_start AND L.window_end = R.window_end AND L.num - R.num = 1
)
GROUP BY window_start, window_end, window_time;
INSERT INTO cumulate_counts
SELECT window_start, window_end, COUNT(*), COUNT(r_id)
FROM (
  SELECT L.id AS l_id, R.id AS r_id, L.window_start, L.window_end
  FROM (SELECT * FROM TABLE(CUMULATE(TABLE LeftTable, DESCRIPTOR(row_time), INTERVAL '2' MINUTES, INTERVAL '6' MINUTES))) L
  LEFT JOIN (SELECT * FROM TABLE(CUMULATE(TABLE RightTable, DESCRIPTOR(row_time), INTERVAL '2' MINUTES, INTERVAL '6' MINUTES))) R
  ON L.num = R.num AND L.window_start = R.window_start AND L.window_end = R.window_end
)
GROUP BY window_start, window_end;
INSERT INTO regrouped
SELECT window_start, window_end, COUNT(*), SUM(cnt)
FROM per_num
GROUP BY window_start, window_end;
INSERT INTO hop_filtered
SELECT window_start, window_end, COUNT(*), MIN(num)
FROM (SELECT * FROM TABLE(HOP(TABLE events, DESCRIPTOR(row_time), INTERVAL '5' MINUTES, INTERVAL '10' MINUTES)) WHERE num > 2)
GROUP BY window_start, window_end;
INSERT INTO top2_sums
SELECT window_start, window_end, COUNT(*), SUM(num)
FROM (
  SELECT * FROM (
    SELECT num, window_start, window_end,
      ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY num DESC) AS rn
    FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(row_time), INTERVAL '5' MINUTES))
  ) WHERE rn <= 2
)
GROUP BY window_start, window_end;
END;
