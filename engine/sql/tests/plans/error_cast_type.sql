-- A CAST to a type Sluice does not support, inside a query.
CREATE TABLE events (
  id BIGINT,
  created STRING
) WITH ('connector' = 'datagen');

CREATE TABLE out (id BIGINT, created TIMESTAMP(3)) WITH ('connector' = 'print');

INSERT INTO out SELECT id, CAST(created AS TIMESTAMP(9)) FROM events;
