-- A comma join: the WHERE conjuncts that read both tables join them, the rest
-- filter the joined rows.
CREATE TABLE a (k STRING, x INT) WITH ('connector' = 'datagen');
CREATE TABLE b (k STRING, y INT) WITH ('connector' = 'datagen');
CREATE TABLE out (k STRING, x INT, y INT) WITH ('connector' = 'print');

INSERT INTO out SELECT a.k, x, y FROM a, b WHERE a.k = b.k AND x > 1 AND x + y > 10;
