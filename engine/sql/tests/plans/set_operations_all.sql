-- INTERSECT ALL and EXCEPT ALL as Flink rewrites them: a UNION ALL of both inputs tagged
-- with their side, counted per distinct row, then each row repeated min(left, right)
-- (INTERSECT ALL) or left - right (EXCEPT ALL) times by an UNNEST of array_repeat.
CREATE TABLE person (id BIGINT NOT NULL, name STRING, state STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, x BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT id, seller FROM auction INTERSECT ALL SELECT id, id FROM person;
INSERT INTO o SELECT id, seller FROM auction EXCEPT ALL SELECT id, id FROM person;
