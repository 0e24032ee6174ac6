-- A column type Sluice does not support.
CREATE TABLE readings (
  sensor STRING,
  tags BINARY(4),
  ts TIMESTAMP(3)
) WITH ('connector' = 'datagen');

CREATE TABLE out (sensor STRING) WITH ('connector' = 'print');

INSERT INTO out SELECT sensor FROM readings;
