-- A LEFT JOIN (updating: it retracts its null-padded rows) into an append-only sink.
CREATE TABLE a (k STRING, x INT) WITH ('connector' = 'datagen');
CREATE TABLE b (k STRING, y INT) WITH ('connector' = 'datagen');
CREATE TABLE out (k STRING, x INT, y INT) WITH ('connector' = 'filesystem', 'path' = '/tmp/out', 'format' = 'json');

INSERT INTO out SELECT a.k, x, y FROM a LEFT JOIN b ON a.k = b.k;
