-- UNNEST correlated with a FROM item: an ARRAY with ordinality (CROSS JOIN), a MAP (comma
-- form), LEFT JOIN ... ON TRUE, over an updating input (a GROUP BY) and keeping the time
-- attribute of an append-only one.
CREATE TABLE orders (
  id BIGINT,
  tags ARRAY<STRING>,
  attrs MAP<STRING, INT>,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/tmp/orders.json', 'format' = 'json');
CREATE TABLE elements (id BIGINT, tag STRING, pos INT, ts TIMESTAMP(3)) WITH ('connector' = 'print');
CREATE TABLE entries (id BIGINT, k STRING, v INT, n INT) WITH ('connector' = 'print');
CREATE TABLE padded (id BIGINT, tag STRING) WITH ('connector' = 'print');
CREATE TABLE counts (tag STRING, c BIGINT) WITH ('connector' = 'print');
CREATE TABLE latest (id BIGINT, tags ARRAY<STRING>, tag STRING) WITH ('connector' = 'print');

INSERT INTO elements SELECT id, tag, pos, ts FROM orders CROSS JOIN UNNEST(tags) WITH ORDINALITY AS t(tag, pos);
INSERT INTO entries SELECT id, k, v, CARDINALITY(attrs) FROM orders, UNNEST(attrs) AS m(k, v) WHERE v > 1;
INSERT INTO padded SELECT o.id, t.tag FROM orders AS o LEFT JOIN UNNEST(o.tags) AS t(tag) ON TRUE;
INSERT INTO counts SELECT tag, COUNT(*) FROM orders CROSS JOIN UNNEST(tags) AS t(tag) GROUP BY tag;
INSERT INTO latest
SELECT id, tags, tag FROM (SELECT MAX(id) AS id, tags[1] AS tag0, tags FROM orders GROUP BY tags)
CROSS JOIN UNNEST(tags) AS t(tag);
CREATE TABLE built (id BIGINT, pair ARRAY<STRING>, x STRING) WITH ('connector' = 'print');
INSERT INTO built SELECT id, ARRAY[tags[1], 'z'], x FROM orders CROSS JOIN UNNEST(ARRAY['p', 'q']) AS t(x);
