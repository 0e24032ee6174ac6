-- MAP[...] with a key and no value.
CREATE TABLE t (id INT, a ARRAY<INT>, b ARRAY<STRING>, m MAP<STRING, INT>) WITH ('connector' = 'filesystem', 'path' = '/tmp/t.json', 'format' = 'json');
CREATE TABLE out (id INT, m MAP<STRING, INT>) WITH ('connector' = 'print');

INSERT INTO out SELECT id,
  MAP['a', id, 'b'] FROM t;
