-- Cascading windows: 5 s tumbling per host, then 20 s tumbling (per host and overall)
-- over the first level's window_time.
CREATE TABLE metrics (
  host STRING,
  cpu INT,
  mem DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/metrics.json',
  'format' = 'json'
);

CREATE VIEW per_5s AS
SELECT window_start AS w5_start, window_end AS w5_end, window_time AS rowtime, host,
       COUNT(*) AS samples, SUM(cpu) AS cpu_sum, MAX(cpu) AS cpu_max, MAX(mem) AS mem_max
FROM TABLE(TUMBLE(TABLE metrics, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, window_time, host;

CREATE TABLE level1 (
  w5_start TIMESTAMP(3),
  w5_end TIMESTAMP(3),
  rowtime TIMESTAMP(3),
  host STRING,
  samples BIGINT,
  cpu_sum INT,
  cpu_max INT,
  mem_max DOUBLE
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/level1',
  'format' = 'json'
);

CREATE TABLE level2_host (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_time TIMESTAMP(3),
  host STRING,
  sub_windows BIGINT,
  samples BIGINT,
  cpu_sum INT,
  cpu_max INT,
  avg_samples BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/level2_host',
  'format' = 'json'
);

CREATE TABLE level2_all (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  hosts BIGINT,
  samples BIGINT,
  mem_max DOUBLE
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/level2_all',
  'format' = 'json'
);

EXECUTE STATEMENT SET
BEGIN
INSERT INTO level1 SELECT * FROM per_5s;

INSERT INTO level2_host
SELECT window_start, window_end, window_time, host,
       COUNT(*) AS sub_windows, SUM(samples) AS samples, SUM(cpu_sum) AS cpu_sum,
       MAX(cpu_max) AS cpu_max, AVG(samples) AS avg_samples
FROM TABLE(TUMBLE(TABLE per_5s, DESCRIPTOR(rowtime), INTERVAL '20' SECOND))
GROUP BY window_start, window_end, window_time, host;

INSERT INTO level2_all
SELECT window_start, window_end,
       COUNT(DISTINCT host) AS hosts, SUM(samples) AS samples, MAX(mem_max) AS mem_max
FROM TABLE(TUMBLE(TABLE per_5s, DESCRIPTOR(rowtime), INTERVAL '20' SECOND))
GROUP BY window_start, window_end;
END;
