-- CROSS JOIN: no key to keep each side's rows by.
CREATE TABLE a (k STRING, x INT) WITH ('connector' = 'datagen');
CREATE TABLE b (k STRING, y INT) WITH ('connector' = 'datagen');
CREATE TABLE out (k STRING, x INT, y INT) WITH ('connector' = 'print');

INSERT INTO out SELECT a.k, x, y FROM a CROSS JOIN b;
