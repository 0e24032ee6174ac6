-- SUM of a FLOAT column: Flink rounds the sum to FLOAT at every row, which
-- Sluice does not do yet.
CREATE TABLE readings (
  sensor STRING,
  temp FLOAT
) WITH ('connector' = 'datagen');

CREATE TABLE out (sensor STRING, total FLOAT) WITH ('connector' = 'print');

INSERT INTO out SELECT sensor, SUM(temp) FROM readings GROUP BY sensor;
