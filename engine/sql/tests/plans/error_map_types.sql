-- MAP[...] keys of different types, as Flink refuses them.
CREATE TABLE t (id INT, a ARRAY<INT>, b ARRAY<STRING>, m MAP<STRING, INT>) WITH ('connector' = 'filesystem', 'path' = '/tmp/t.json', 'format' = 'json');
CREATE TABLE out (id INT, m MAP<STRING, INT>) WITH ('connector' = 'print');

INSERT INTO out SELECT id, MAP['a', id, 2, id] FROM t;
