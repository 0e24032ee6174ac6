-- A tumbling window aggregation per key, with COUNT(DISTINCT) and AVG
-- (config/examples/demo.sql); a WHERE on input columns runs before the window.
CREATE TABLE page_views (
  id BIGINT,
  page_id INT,
  user_id INT,
  latency_ms DOUBLE,
  ts AS TO_TIMESTAMP_LTZ(1700000000000 + id / 2, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '1000');

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
WHERE latency_ms > 0
GROUP BY window_start, window_end, page_id;
