-- REAL, which Flink 2.3 refuses too ("Type is not supported: REAL"); FLOAT
-- is Flink's 4-byte floating-point type.
CREATE TABLE readings (
  sensor STRING,
  temp REAL
) WITH ('connector' = 'datagen');

CREATE TABLE out (sensor STRING) WITH ('connector' = 'print');

INSERT INTO out SELECT sensor FROM readings;
