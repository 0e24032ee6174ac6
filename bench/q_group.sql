-- Non-windowed GROUP BY benchmark (an updating aggregation): 10,000,000 generated rows,
-- 10,000 keys, COUNT/SUM/MAX per key -> blackhole (which takes updates). Every input row
-- emits -U and +U for its key (+I for the first), as Flink's GroupAggFunction does
-- without mini-batch.
CREATE TABLE src (
  id BIGINT,
  v INT,
  k AS id % 10000
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
  k BIGINT,
  cnt BIGINT,
  total INT,
  max_v INT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO sink
SELECT k, COUNT(*) AS cnt, SUM(v) AS total, MAX(v) AS max_v
FROM src
GROUP BY k;
