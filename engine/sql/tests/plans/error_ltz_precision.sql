-- TIMESTAMP_LTZ with a precision that is not a number.
CREATE TABLE events (
  id BIGINT,
  ts TIMESTAMP_LTZ(p)
) WITH ('connector' = 'datagen');

CREATE TABLE out (id BIGINT) WITH ('connector' = 'print');

INSERT INTO out SELECT id FROM events;
