-- Window aggregations attached to the windows of a window aggregation whose time
-- attribute is a TIMESTAMP_LTZ(3), in Europe/Paris: the inner aggregation keeps
-- window_start and window_end only (no window_time), and the outer ones group by them.
-- Flink keeps the outer aggregations window aggregations (insert-only, firing when the
-- watermark passes each window), so the filesystem sinks (append-only) take them.
SET 'table.local-time-zone' = 'Europe/Paris';

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

CREATE TABLE users_per_window (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  users BIGINT,
  busiest INT,
  total BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/users_per_window',
  'format' = 'json'
);

CREATE TABLE windows_by_size (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  events BIGINT,
  users BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/windows_by_size',
  'format' = 'json'
);

CREATE VIEW per_user AS
SELECT window_start, window_end, user_id, COUNT(*) AS events, SUM(clicks) AS total_clicks
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, user_id;

EXECUTE STATEMENT SET BEGIN
INSERT INTO users_per_window
SELECT window_start, window_end, COUNT(*) AS users, MAX(total_clicks) AS busiest, SUM(events) AS total
FROM per_user
GROUP BY window_start, window_end;

INSERT INTO windows_by_size
SELECT window_start, window_end, events, COUNT(*) AS users
FROM per_user
GROUP BY window_start, window_end, events;
END;
