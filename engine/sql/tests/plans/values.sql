CREATE TABLE out (id BIGINT, name STRING, n BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT v.id, v.name, COUNT(*) FROM (VALUES (1, 'a'), (2, CAST(NULL AS STRING))) AS v(id, name)
GROUP BY v.id, v.name;
