-- Tumbling-window aggregation benchmark: 10,000,000 generated rows, 10,000 keys,
-- event time from the sequence (10 rows per millisecond -> 100 windows of 10 s, each with
-- 100,000 rows, 10 rows per key), 1 s watermark delay -> blackhole.
-- 'rows-per-second' >= 'number-of-rows' means no throttling (see q_filter.sql).
CREATE TABLE src (
  id BIGINT,
  v INT,
  k AS id % 10000,
  ts AS TO_TIMESTAMP_LTZ(id / 10, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'datagen',
  'number-of-rows' = '10000000',
  'rows-per-second' = '1000000000',
  'fields.id.kind' = 'sequence',
  'fields.id.start' = '1',
  'fields.id.end' = '10000000',
  'fields.v.kind' = 'random',
  'fields.v.min' = '0',
  'fields.v.max' = '100'
);

CREATE TABLE sink (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  k BIGINT,
  cnt BIGINT,
  total INT,
  max_v INT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO sink
SELECT window_start, window_end, k, COUNT(*) AS cnt, SUM(v) AS total, MAX(v) AS max_v
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, k;
