-- Time bounds that no pair of rows can satisfy.
CREATE TABLE a (k BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE b (k BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE out (k BIGINT) WITH ('connector' = 'print');

INSERT INTO out SELECT a.k FROM a JOIN b ON a.k = b.k AND a.ts > b.ts + INTERVAL '1' MINUTE AND a.ts < b.ts;
