-- Cascading windows: 5 s tumbling per host in a view, then 20 s tumbling over the
-- first level's window_time (engine/tests/golden/cascading_windows).
CREATE TABLE metrics (
  host STRING,
  cpu INT,
  mem DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/metrics.json', 'format' = 'json');

CREATE VIEW per_5s AS
SELECT window_start AS w5_start, window_end AS w5_end, window_time AS rowtime, host,
       COUNT(*) AS samples, SUM(cpu) AS cpu_sum, MAX(mem) AS mem_max
FROM TABLE(TUMBLE(TABLE metrics, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, window_time, host;

CREATE TABLE level2_all (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  hosts BIGINT,
  samples BIGINT,
  mem_max DOUBLE
) WITH ('connector' = 'print');

INSERT INTO level2_all
SELECT window_start, window_end,
       COUNT(DISTINCT host) AS hosts, SUM(samples) AS samples, MAX(mem_max) AS mem_max
FROM TABLE(TUMBLE(TABLE per_5s, DESCRIPTOR(rowtime), INTERVAL '20' SECOND))
GROUP BY window_start, window_end;
