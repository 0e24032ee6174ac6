-- A timestamp precision finer than milliseconds.
CREATE TABLE ticks (
  symbol STRING,
  ts TIMESTAMP(6)
) WITH ('connector' = 'datagen');

CREATE TABLE out (symbol STRING) WITH ('connector' = 'print');

INSERT INTO out SELECT symbol FROM ticks;
