-- The disk state backend's benchmark (scripts/bench_spill.py): a non-windowed
-- GROUP BY over ${KEYS} keys drawn uniformly at random, ${ROWS} rows, COUNT/SUM/MAX
-- per key -> blackhole. Uniform keys are the hard case for a cache: with state
-- 4x the memory budget, about 3 in 4 rows find their key on disk.
CREATE TABLE src (
  k BIGINT,
  v INT,
  tag STRING
) WITH (
  'connector' = 'datagen',
  'number-of-rows' = '${ROWS}',
  'rows-per-second' = '1000000000',
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
FROM src
GROUP BY k;
