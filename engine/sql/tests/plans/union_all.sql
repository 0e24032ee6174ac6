-- UNION ALL of two sources in a view, written as is and aggregated in a tumbling window
-- over the union's time attribute (engine/tests/golden/union_all).
CREATE TABLE web_clicks (
  click_id BIGINT,
  user_id STRING,
  page STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/web.json', 'format' = 'json');

CREATE TABLE app_clicks (
  click_id INT,
  user_id STRING,
  page STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/app.json', 'format' = 'json');

CREATE VIEW all_clicks AS
SELECT 'web' AS channel, click_id, user_id, page, ts FROM web_clicks WHERE page <> 'health'
UNION ALL
SELECT 'app' AS channel, click_id + 1000 AS click_id, user_id, UPPER(page) AS page, ts FROM app_clicks;

CREATE TABLE clicks_out (
  channel STRING,
  click_id BIGINT,
  user_id STRING,
  page STRING,
  ts TIMESTAMP(3)
) WITH ('connector' = 'print');

CREATE TABLE clicks_per_window (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  channel STRING,
  clicks BIGINT,
  users BIGINT
) WITH ('connector' = 'print');

INSERT INTO clicks_out SELECT channel, click_id, user_id, page, ts FROM all_clicks;

INSERT INTO clicks_per_window
SELECT window_start, window_end, channel, COUNT(*) AS clicks, COUNT(DISTINCT user_id) AS users
FROM TABLE(TUMBLE(TABLE all_clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, channel;
