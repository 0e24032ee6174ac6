-- The disk backend's benchmark for window state (scripts/bench_spill.py): a
-- one-day TUMBLE window over ${KEYS} keys drawn uniformly at random, ${ROWS} rows,
-- COUNT/SUM/MAX per key and window -> blackhole. Every row falls in one window,
-- which fires at the end of the input: with state 4x the memory budget, its pane
-- spills run after run, and the firing merges them.
CREATE TABLE src (
  id BIGINT,
  k BIGINT,
  v INT,
  tag STRING,
  ts AS TO_TIMESTAMP_LTZ(id, 3),
  WATERMARK FOR ts AS ts
) WITH (
  'connector' = 'datagen',
  'number-of-rows' = '${ROWS}',
  'rows-per-second' = '1000000000',
  'fields.id.kind' = 'sequence',
  'fields.id.start' = '0',
  'fields.id.end' = '${ROWS_LAST}',
  'fields.k.kind' = 'random',
  'fields.k.min' = '0',
  'fields.k.max' = '${KEYS_MAX}',
  'fields.v.kind' = 'random',
  'fields.v.min' = '0',
  'fields.v.max' = '100',
  'fields.tag.length' = '24'
);

CREATE TABLE sink (
  k BIGINT,
  cnt BIGINT,
  total INT,
  max_tag STRING
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO sink
SELECT k, COUNT(*) AS cnt, SUM(v) AS total, MAX(tag) AS max_tag
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' DAY))
GROUP BY window_start, window_end, k;
