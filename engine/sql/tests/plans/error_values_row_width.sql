CREATE TABLE out (id BIGINT, name STRING) WITH ('connector' = 'blackhole');

INSERT INTO out
SELECT * FROM (VALUES (1, 'a'), (2, 'b', 3)) AS t(id, name);
