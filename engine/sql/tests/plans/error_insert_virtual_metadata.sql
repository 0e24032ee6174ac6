-- A VIRTUAL metadata column is not among a sink's columns: an INSERT cannot name it.
CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen');
CREATE TABLE dst (
  id BIGINT,
  part INT METADATA FROM 'partition' VIRTUAL
) WITH ('connector' = 'kafka');
INSERT INTO dst (id, part) SELECT id, 1 FROM src;
