-- Event time is a TIMESTAMP_LTZ(3) computed from epoch millis (session time zone: UTC).
CREATE TABLE clicks (
  user_id STRING,
  clicks INT,
  epoch_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(epoch_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/clicks.json',
  'format' = 'json'
);

CREATE TABLE clicks_per_window (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_time TIMESTAMP_LTZ(3),
  user_id STRING,
  events BIGINT,
  total_clicks INT,
  first_ms BIGINT,
  last_ms BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/clicks_per_window',
  'format' = 'json'
);

INSERT INTO clicks_per_window
SELECT window_start, window_end, window_time, user_id,
       COUNT(*) AS events, SUM(clicks) AS total_clicks,
       MIN(epoch_ms) AS first_ms, MAX(epoch_ms) AS last_ms
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, window_time, user_id;
