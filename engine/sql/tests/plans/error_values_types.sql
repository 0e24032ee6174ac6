CREATE TABLE out (id BIGINT, name STRING) WITH ('connector' = 'blackhole');

INSERT INTO out VALUES (1, 'a'), (2, TRUE);
