-- Computed columns and a watermark on a computed TIMESTAMP_LTZ column
-- (config/examples/demo.sql).
CREATE TABLE page_views (
  id BIGINT,
  page_id INT,
  user_id INT,
  latency_ms DOUBLE,
  latency_s AS latency_ms / 1000,
  ts AS TO_TIMESTAMP_LTZ(1700000000000 + id / 2, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '100000',
  'fields.id.kind' = 'sequence',
  'fields.id.start' = '0',
  'fields.id.end' = '399999'
);

CREATE TABLE slow_views (
  id BIGINT,
  page_id INT,
  latency_s DOUBLE,
  ts TIMESTAMP_LTZ(3)
) WITH ('connector' = 'print');

INSERT INTO slow_views
SELECT id, page_id, latency_s, ts FROM page_views WHERE latency_s > 0.4;
