-- A LATERAL subquery (a correlated join) is not supported.
CREATE TABLE a (k STRING, x INT) WITH ('connector' = 'datagen');
CREATE TABLE b (k STRING, y INT) WITH ('connector' = 'datagen');
CREATE TABLE out (k STRING, x INT, y INT) WITH ('connector' = 'print');

INSERT INTO out SELECT a.k, x, t.y FROM a, LATERAL (SELECT y FROM b WHERE b.k = a.k) AS t;
