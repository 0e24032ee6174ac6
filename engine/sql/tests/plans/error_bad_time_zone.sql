-- A session time zone that is not an IANA name.
SET 'table.local-time-zone' = 'Central European Time';

CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT) WITH ('connector' = 'print');

INSERT INTO out SELECT id FROM src;
