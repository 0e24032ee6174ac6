-- NATURAL JOIN is not supported: the condition is written with ON.
CREATE TABLE a (k STRING, x INT) WITH ('connector' = 'datagen');
CREATE TABLE b (k STRING, y INT) WITH ('connector' = 'datagen');
CREATE TABLE out (k STRING, x INT, y INT) WITH ('connector' = 'print');

INSERT INTO out SELECT k, x, y FROM a NATURAL JOIN b;
