-- Cumulating windows: step 5 s, max size 20 s.
CREATE TABLE pageviews (
  view_id BIGINT,
  site STRING,
  user_id STRING,
  num_bytes BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/pageviews.json', 'format' = 'json');

CREATE TABLE cumulative (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_time TIMESTAMP(3),
  site STRING,
  view_count BIGINT,
  total_bytes BIGINT,
  max_bytes BIGINT,
  users BIGINT
) WITH ('connector' = 'print');

INSERT INTO cumulative
SELECT window_start, window_end, window_time, site,
       COUNT(*) AS view_count, SUM(num_bytes) AS total_bytes, MAX(num_bytes) AS max_bytes,
       COUNT(DISTINCT user_id) AS users
FROM TABLE(CUMULATE(TABLE pageviews, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '20' SECOND))
GROUP BY window_start, window_end, window_time, site;
