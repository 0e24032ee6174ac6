-- TINYINT, SMALLINT and FLOAT columns: aggregates with Flink's result types
-- (SUM/AVG of TINYINT and SMALLINT keep their type, AVG(FLOAT) is FLOAT,
-- COUNT is BIGINT), a FLOAT GROUP BY key, and the casts the sink needs.
CREATE TABLE readings (
  sensor STRING,
  level TINYINT,
  code SMALLINT,
  temp FLOAT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen', 'fields.level.min' = '-5', 'fields.level.max' = '5');

CREATE TABLE per_window (
  sensor STRING,
  n BIGINT,
  sum_level TINYINT,
  avg_code SMALLINT,
  avg_temp FLOAT,
  max_temp FLOAT
) WITH ('connector' = 'print');

CREATE TABLE per_temp (
  temp FLOAT,
  n BIGINT,
  sum_code INT
) WITH ('connector' = 'print');

INSERT INTO per_window
SELECT sensor, COUNT(*), SUM(level), AVG(code), AVG(temp), MAX(temp)
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, sensor;

INSERT INTO per_temp
SELECT temp, COUNT(*), SUM(code) FROM readings GROUP BY temp;
