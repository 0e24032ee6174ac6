-- The MAP value constructor: keys and values coerced to one type each, a
-- repeated key, access by key, CARDINALITY and UNNEST of a constructed map.
CREATE TABLE t (id INT, a ARRAY<INT>, b ARRAY<STRING>, m MAP<STRING, INT>) WITH ('connector' = 'filesystem', 'path' = '/tmp/t.json', 'format' = 'json');
CREATE TABLE out (id INT, m MAP<STRING, BIGINT>, c INT, v BIGINT) WITH ('connector' = 'print');
CREATE TABLE pairs (id INT, k STRING, v INT) WITH ('connector' = 'print');

INSERT INTO out SELECT id, MAP['x', CAST(id AS BIGINT), 'y', 7], CARDINALITY(MAP['p', 1, 'q', 2, 'p', 3]), MAP['k', CAST(id AS BIGINT) * 10]['k'] FROM t;
INSERT INTO pairs SELECT id, k, v FROM t CROSS JOIN UNNEST(MAP[COALESCE(b[1], 'none'), id, 'w', id + 100]) AS x(k, v);
