-- compare: materialized
-- TINYINT, SMALLINT and FLOAT (the inputs of types_small_float) in window and
-- non-windowed aggregates (SUM/AVG/MIN/MAX/COUNT with Flink's result types:
-- SUM and AVG of TINYINT are TINYINT, AVG(FLOAT) is FLOAT), as GROUP BY keys,
-- in OVER aggregates, and as the print sink shows them (Float.toString).

CREATE TABLE readings (
  id INT,
  grp STRING,
  ti TINYINT,
  si SMALLINT,
  f FLOAT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/readings.csv',
  'format' = 'csv',
  'csv.null-literal' = 'NULL'
);

CREATE TABLE levels (
  level TINYINT,
  code SMALLINT,
  label STRING,
  weight FLOAT
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/levels.json',
  'format' = 'json'
);

CREATE TABLE levels_out (
  level TINYINT,
  code SMALLINT,
  label STRING,
  weight FLOAT,
  weight_str STRING
) WITH ('connector' = 'print', 'print-identifier' = 'levels_out');

CREATE TABLE windowed (
  window_start TIMESTAMP(3),
  grp STRING,
  n BIGINT,
  n_ti BIGINT,
  sum_ti TINYINT,
  sum_si SMALLINT,
  avg_ti TINYINT,
  avg_si SMALLINT,
  avg_f FLOAT,
  min_ti TINYINT,
  max_si SMALLINT,
  min_f FLOAT,
  max_f FLOAT
) WITH ('connector' = 'print', 'print-identifier' = 'windowed');

CREATE TABLE grouped (
  ti TINYINT,
  n BIGINT,
  sum_si SMALLINT,
  max_f FLOAT,
  avg_si SMALLINT
) WITH ('connector' = 'print', 'print-identifier' = 'grouped');

CREATE TABLE over_out (
  id INT,
  grp STRING,
  sum_ti TINYINT,
  max_si SMALLINT,
  avg_f FLOAT,
  min_f FLOAT,
  max_ti TINYINT
) WITH ('connector' = 'print', 'print-identifier' = 'over_out');

INSERT INTO levels_out
SELECT level, code, label, weight, CAST(weight AS STRING) FROM levels;

INSERT INTO windowed
SELECT window_start, grp, COUNT(*), COUNT(ti), SUM(ti), SUM(si), AVG(ti), AVG(si), AVG(f),
       MIN(ti), MAX(si), MIN(f), MAX(f)
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, grp;

INSERT INTO grouped
SELECT ti, COUNT(*), SUM(si), MAX(f), AVG(si)
FROM readings
GROUP BY ti;

INSERT INTO over_out
SELECT id, grp,
       -- Not AVG(si): over a ROWS frame Flink 2.3 wraps that sum at 16 bits
       -- (AVG of -32768 and -2 is 16383), which Sluice does not.
       SUM(ti) OVER w, MAX(si) OVER w, AVG(f) OVER w, MIN(f) OVER w, MAX(ti) OVER w
FROM readings
WINDOW w AS (PARTITION BY grp ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW);
