-- A join without an equality condition between its inputs.
CREATE TABLE a (k STRING, x INT) WITH ('connector' = 'datagen');
CREATE TABLE b (k STRING, y INT) WITH ('connector' = 'datagen');
CREATE TABLE out (k STRING, x INT, y INT) WITH ('connector' = 'print');

INSERT INTO out SELECT a.k, x, y FROM a JOIN b ON a.x < b.y;
