-- Aggregates over nullable columns: COUNT(*) vs COUNT(x), SUM/AVG/MIN/MAX ignore nulls and
-- return NULL when a group has no non-null value; AVG over INT/BIGINT truncates toward zero.
CREATE TABLE measurements (
  id BIGINT,
  grp STRING,
  i INT,
  b BIGINT,
  d DOUBLE,
  m DECIMAL(6, 3),
  s STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/measurements.json',
  'format' = 'json'
);

CREATE TABLE null_stats (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  grp STRING,
  n BIGINT,
  n_i BIGINT,
  n_s BIGINT,
  n_distinct_s BIGINT,
  sum_i INT,
  sum_b BIGINT,
  sum_d DOUBLE,
  sum_m DECIMAL(38, 3),
  avg_i INT,
  avg_b BIGINT,
  avg_d DOUBLE,
  avg_m DECIMAL(38, 6),
  min_i INT,
  max_i INT,
  min_d DOUBLE,
  max_m DECIMAL(6, 3),
  min_s STRING,
  max_s STRING,
  sum_coalesced INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/null_stats',
  'format' = 'json'
);

CREATE TABLE null_stats_csv (
  window_start TIMESTAMP(3),
  grp STRING,
  sum_i INT,
  avg_d DOUBLE,
  avg_m DECIMAL(38, 6),
  max_s STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/null_stats_csv',
  'format' = 'csv'
);

CREATE VIEW stats AS
SELECT window_start, window_end, grp,
       COUNT(*) AS n, COUNT(i) AS n_i, COUNT(s) AS n_s, COUNT(DISTINCT s) AS n_distinct_s,
       SUM(i) AS sum_i, SUM(b) AS sum_b, SUM(d) AS sum_d, SUM(m) AS sum_m,
       AVG(i) AS avg_i, AVG(b) AS avg_b, AVG(d) AS avg_d, AVG(m) AS avg_m,
       MIN(i) AS min_i, MAX(i) AS max_i, MIN(d) AS min_d, MAX(m) AS max_m,
       MIN(s) AS min_s, MAX(s) AS max_s,
       SUM(COALESCE(i, 0)) AS sum_coalesced
FROM TABLE(TUMBLE(TABLE measurements, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, grp;

INSERT INTO null_stats SELECT * FROM stats;

INSERT INTO null_stats_csv SELECT window_start, grp, sum_i, avg_d, avg_m, max_s FROM stats;
