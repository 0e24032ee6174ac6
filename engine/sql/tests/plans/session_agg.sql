-- Session windows per user with a 5 s gap (SESSION ... PARTITION BY).
CREATE TABLE activity (
  event_id BIGINT,
  user_id STRING,
  amount INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '3' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/activity.json', 'format' = 'json');

CREATE TABLE sessions (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_time TIMESTAMP(3),
  user_id STRING,
  events BIGINT,
  total INT,
  first_event BIGINT,
  last_event BIGINT
) WITH ('connector' = 'print');

INSERT INTO sessions
SELECT window_start, window_end, window_time, user_id,
       COUNT(*) AS events, SUM(amount) AS total,
       MIN(event_id) AS first_event, MAX(event_id) AS last_event
FROM TABLE(SESSION(TABLE activity PARTITION BY user_id, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, window_time, user_id;
