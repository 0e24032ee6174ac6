-- UNNEST of a column that is neither an ARRAY nor a MAP.
CREATE TABLE orders (id BIGINT, tags ARRAY<STRING>) WITH ('connector' = 'filesystem', 'path' = '/tmp/o.json', 'format' = 'json');
CREATE TABLE out (id BIGINT, x BIGINT) WITH ('connector' = 'print');

INSERT INTO out SELECT id, x FROM orders CROSS JOIN UNNEST(id) AS t(x);
