-- Tables and a view, but no INSERT INTO: the job would produce nothing.
CREATE TABLE src (id BIGINT, name STRING) WITH ('connector' = 'datagen');

CREATE VIEW named AS SELECT id, name FROM src WHERE name IS NOT NULL;
