-- table.exec.state.ttl takes a duration.
SET 'table.exec.state.ttl' = 'one hour';
CREATE TABLE a (k STRING) WITH ('connector' = 'datagen');
CREATE TABLE out (k STRING) WITH ('connector' = 'print');
INSERT INTO out SELECT k FROM a;
