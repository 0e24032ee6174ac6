-- IN and EXISTS subqueries in WHERE are semi and anti joins: IN on its key, NOT IN
-- keyless over nullable columns (the condition is (k = c) IS NOT FALSE, as Flink's) and
-- keyed over NOT NULL ones, a correlated EXISTS joins on its correlation, and the
-- subquery's own conditions filter its input; an anti join is updating.
CREATE TABLE person (id BIGINT NOT NULL, name STRING, state STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, x BIGINT) WITH ('connector' = 'print');
CREATE TABLE p (id BIGINT, name STRING) WITH ('connector' = 'print');
INSERT INTO o SELECT id, seller FROM auction WHERE seller IN (SELECT id FROM person WHERE state = 'OR') AND reserve > 10;
INSERT INTO o SELECT id, seller FROM auction WHERE seller NOT IN (SELECT seller FROM auction WHERE reserve > 100);
INSERT INTO p SELECT id, name FROM person WHERE id NOT IN (SELECT id FROM person WHERE state = 'CA');
INSERT INTO p SELECT id, name FROM person P WHERE NOT EXISTS (SELECT * FROM auction A WHERE A.seller = P.id AND A.reserve > P.id AND A.reserve > 5);
