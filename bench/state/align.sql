-- Alignment benchmark (scripts/bench_state.py): a keyed tumbling-window aggregation over
-- datagen, run at parallelism 2 so there is a keyed (HASH) shuffle for barriers to align on.
-- @NUMBER_OF_ROWS@ rows (the sequence end bounds the source; a huge end makes it
-- unbounded), at most @ROWS_PER_SECOND@ rows per second in total; 100,000 keys,
-- event time from the sequence (10 rows per millisecond, 10 s windows).
CREATE TABLE src (
  id BIGINT,
  v INT,
  k AS id % 100000,
  ts AS TO_TIMESTAMP_LTZ(id / 10, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'datagen',
  'rows-per-second' = '@ROWS_PER_SECOND@',
  'fields.id.kind' = 'sequence',
  'fields.id.start' = '1',
  'fields.id.end' = '@NUMBER_OF_ROWS@',
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
