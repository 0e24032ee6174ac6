-- LEFT SEMI JOIN is not Flink SQL; the supported join types are named in the message.
CREATE TABLE a (k STRING, x INT) WITH ('connector' = 'datagen');
CREATE TABLE b (k STRING, y INT) WITH ('connector' = 'datagen');
CREATE TABLE out (k STRING, x INT) WITH ('connector' = 'print');

INSERT INTO out SELECT a.k, x FROM a LEFT SEMI JOIN b ON a.k = b.k;
