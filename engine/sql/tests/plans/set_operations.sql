-- UNION, INTERSECT and EXCEPT without ALL: distinct rows of a UNION ALL, or of a semi or
-- anti join on every column with NULLs equal (two keys per nullable column: IS NULL and
-- the value with NULL replaced by a constant of its type).
CREATE TABLE person (id BIGINT NOT NULL, name STRING, state STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, x BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT id, seller FROM auction UNION SELECT id, CAST(NULL AS BIGINT) FROM person;
INSERT INTO o SELECT id, seller FROM auction INTERSECT SELECT id, id FROM person;
INSERT INTO o SELECT id, seller FROM auction EXCEPT SELECT id, id FROM person;
