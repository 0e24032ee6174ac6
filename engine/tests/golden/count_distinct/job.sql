-- COUNT(DISTINCT ..) in tumbling windows, per key and per window; nulls are not counted.
CREATE TABLE visits (
  visit_id BIGINT,
  page STRING,
  user_id STRING,
  country STRING,
  session_len INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/visits.json',
  'format' = 'json'
);

CREATE TABLE per_page (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  page STRING,
  visits BIGINT,
  users BIGINT,
  countries BIGINT,
  with_country BIGINT,
  lens BIGINT,
  sum_len INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/per_page',
  'format' = 'json'
);

CREATE TABLE per_window (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  visits BIGINT,
  users BIGINT,
  pages BIGINT,
  countries BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/per_window',
  'format' = 'json'
);

INSERT INTO per_page
SELECT window_start, window_end, page,
       COUNT(*) AS visits,
       COUNT(DISTINCT user_id) AS users,
       COUNT(DISTINCT country) AS countries,
       COUNT(country) AS with_country,
       COUNT(DISTINCT session_len) AS lens,
       SUM(session_len) AS sum_len
FROM TABLE(TUMBLE(TABLE visits, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, page;

INSERT INTO per_window
SELECT window_start, window_end,
       COUNT(*) AS visits,
       COUNT(DISTINCT user_id) AS users,
       COUNT(DISTINCT page) AS pages,
       COUNT(DISTINCT country) AS countries
FROM TABLE(TUMBLE(TABLE visits, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end;
