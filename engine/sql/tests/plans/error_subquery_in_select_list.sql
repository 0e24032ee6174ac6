-- IN and EXISTS subqueries are planned in WHERE and HAVING, not as values of a SELECT list.
CREATE TABLE person (id BIGINT NOT NULL, name STRING, state STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, x BOOLEAN) WITH ('connector' = 'print');
INSERT INTO o SELECT id, seller IN (SELECT id FROM person) FROM auction;
