-- SET statements; a TIMESTAMP_LTZ time attribute whose hourly windows align to the
-- session time zone (engine/tests/golden/tumble_ltz_tz).
SET 'table.local-time-zone' = 'Asia/Shanghai';
SET 'parallelism.default' = '2';

CREATE TABLE readings (
  sensor STRING,
  `value` DOUBLE,
  epoch_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(epoch_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/readings.json', 'format' = 'json');

CREATE TABLE hourly (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_time TIMESTAMP_LTZ(3),
  window_time_local STRING,
  sensor STRING,
  n BIGINT,
  total DOUBLE
) WITH ('connector' = 'print');

INSERT INTO hourly
SELECT window_start, window_end, window_time,
       DATE_FORMAT(window_time, 'yyyy-MM-dd HH:mm:ss.SSS') AS window_time_local,
       sensor, COUNT(*) AS n, SUM(`value`) AS total
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '1' HOUR))
GROUP BY window_start, window_end, window_time, sensor;
