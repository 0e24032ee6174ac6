-- IN and EXISTS subqueries in HAVING (semi and anti joins of the aggregation's rows) and
-- under OR or NOT (mark joins: a LEFT JOIN with the subquery's distinct values and a
-- marker, and for IN an inner join without a key with its counts).
CREATE TABLE person (id BIGINT NOT NULL, name STRING, state STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, x BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT seller, COUNT(*) FROM auction GROUP BY seller HAVING seller IN (SELECT id FROM person WHERE state = 'OR');
INSERT INTO o SELECT seller, COUNT(*) FROM auction GROUP BY seller HAVING COUNT(*) > 2 OR seller NOT IN (SELECT id FROM person);
INSERT INTO o SELECT id, seller FROM auction WHERE reserve > 5 OR seller IN (SELECT id FROM person WHERE state = 'OR');
INSERT INTO o SELECT id, reserve FROM auction A WHERE reserve > 5 OR NOT EXISTS (SELECT * FROM person P WHERE P.id = A.seller AND P.id > A.seller * 2);
