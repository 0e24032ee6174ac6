-- Stateless filter + projection benchmark: 20,000,000 generated rows -> blackhole.
-- 'rows-per-second' is above 'number-of-rows': Flink's datagen emits rows-per-second /
-- parallelism rows per second and then sleeps until the next second, so a rate >= the row
-- count never sleeps (no throttling).
CREATE TABLE src (
  id BIGINT,
  a INT,
  b DOUBLE,
  s STRING
) WITH (
  'connector' = 'datagen',
  'number-of-rows' = '20000000',
  'rows-per-second' = '1000000000',
  'fields.id.kind' = 'sequence',
  'fields.id.start' = '1',
  'fields.id.end' = '20000000',
  'fields.a.kind' = 'random',
  'fields.a.min' = '0',
  'fields.a.max' = '999',
  'fields.b.kind' = 'random',
  'fields.b.min' = '0',
  'fields.b.max' = '1',
  'fields.s.kind' = 'random',
  'fields.s.length' = '10'
);

CREATE TABLE sink (
  id BIGINT,
  a INT,
  b2 DOUBLE,
  s STRING,
  s_len INT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO sink
SELECT id, a, b * 2 AS b2, UPPER(s) AS s, CHAR_LENGTH(s) AS s_len
FROM src
WHERE a < 500 AND b > 0.25;
