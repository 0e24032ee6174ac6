-- UNNEST of two collections at once: Flink 2.3 fails to plan it (an internal
-- IndexOutOfBoundsException in ProjectToCalcRule), so Sluice refuses it.
CREATE TABLE t (id INT, a ARRAY<INT>, b ARRAY<STRING>, m MAP<STRING, INT>) WITH ('connector' = 'filesystem', 'path' = '/tmp/t.json', 'format' = 'json');
CREATE TABLE out (id INT, x INT, y STRING) WITH ('connector' = 'print');

INSERT INTO out SELECT id, x, y FROM t CROSS JOIN UNNEST(t.a, t.b) AS u(x, y);
