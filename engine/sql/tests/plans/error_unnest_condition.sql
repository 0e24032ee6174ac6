-- A join with UNNEST on a condition other than TRUE.
CREATE TABLE orders (id BIGINT, tags ARRAY<STRING>) WITH ('connector' = 'filesystem', 'path' = '/tmp/o.json', 'format' = 'json');
CREATE TABLE out (id BIGINT, tag STRING) WITH ('connector' = 'print');

INSERT INTO out SELECT id, tag FROM orders LEFT JOIN UNNEST(tags) AS t(tag) ON tag <> 'x';
