-- DATE_FORMAT, TO_TIMESTAMP, EXTRACT, FLOOR(.. TO MINUTE), TO_TIMESTAMP_LTZ, REGEXP_EXTRACT.
CREATE TABLE events (
  id INT,
  ts TIMESTAMP(3),
  ts_str STRING,
  alt_str STRING,
  epoch_ms BIGINT,
  url STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/events.json',
  'format' = 'json'
);

CREATE TABLE time_out (
  id INT,
  ts TIMESTAMP(3),
  minute_str STRING,
  time_str STRING,
  day_key STRING,
  parsed TIMESTAMP(3),
  parsed_alt TIMESTAMP(3),
  yr BIGINT,
  mon BIGINT,
  dy BIGINT,
  hr BIGINT,
  mi BIGINT,
  sec BIGINT,
  ts_minute TIMESTAMP(3),
  ltz TIMESTAMP_LTZ(3),
  ltz_str STRING,
  ltz_minute TIMESTAMP_LTZ(3),
  url_id STRING,
  host STRING,
  page STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/time_out',
  'format' = 'json'
);

INSERT INTO time_out
SELECT
  id,
  ts,
  DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm') AS minute_str,
  DATE_FORMAT(ts, 'HH:mm:ss.SSS') AS time_str,
  DATE_FORMAT(ts, 'yyyyMMdd') AS day_key,
  TO_TIMESTAMP(ts_str) AS parsed,
  TO_TIMESTAMP(alt_str, 'yyyy/MM/dd HH:mm') AS parsed_alt,
  EXTRACT(YEAR FROM ts) AS yr,
  EXTRACT(MONTH FROM ts) AS mon,
  EXTRACT(DAY FROM ts) AS dy,
  EXTRACT(HOUR FROM ts) AS hr,
  EXTRACT(MINUTE FROM ts) AS mi,
  EXTRACT(SECOND FROM ts) AS sec,
  FLOOR(ts TO MINUTE) AS ts_minute,
  TO_TIMESTAMP_LTZ(epoch_ms, 3) AS ltz,
  DATE_FORMAT(TO_TIMESTAMP_LTZ(epoch_ms, 3), 'yyyy-MM-dd HH:mm:ss.SSS') AS ltz_str,
  FLOOR(TO_TIMESTAMP_LTZ(epoch_ms, 3) TO MINUTE) AS ltz_minute,
  REGEXP_EXTRACT(url, 'id=([0-9]+)', 1) AS url_id,
  REGEXP_EXTRACT(url, '^[a-z]+://([^/]+)', 1) AS host,
  REGEXP_EXTRACT(url, '[A-Za-z]+\.html', 0) AS page
FROM events;
