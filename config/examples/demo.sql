-- Sluice demo: page views per page over 10-second tumbling windows, from
-- 1,200,000 generated events (2,000 per second of wall-clock time, for ten
-- minutes) spanning 600 seconds of event time: a window fires every 10 s.
-- `make run` adds checkpoints every 5 s and prints where its web UI is;
-- Ctrl-C stops it.

CREATE TABLE page_views (
  id BIGINT,
  page_id INT,
  user_id INT,
  latency_ms DOUBLE,
  ts AS TO_TIMESTAMP_LTZ(1700000000000 + id / 2, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '2000',
  'fields.id.kind' = 'sequence',
  'fields.id.start' = '0',
  'fields.id.end' = '1199999',
  'fields.page_id.min' = '1',
  'fields.page_id.max' = '5',
  'fields.user_id.min' = '1',
  'fields.user_id.max' = '1000',
  'fields.latency_ms.min' = '1',
  'fields.latency_ms.max' = '500',
  'seed' = '42'
);

CREATE TABLE views_per_page (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  page_id INT,
  views BIGINT,
  users BIGINT,
  avg_latency_ms DOUBLE
) WITH ('connector' = 'print');

INSERT INTO views_per_page
SELECT window_start, window_end, page_id, COUNT(*), COUNT(DISTINCT user_id), AVG(latency_ms)
FROM TABLE(TUMBLE(TABLE page_views, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, page_id;
