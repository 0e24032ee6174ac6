-- EXISTS under OR needs an equality between the outer query and the subquery.
CREATE TABLE person (id BIGINT NOT NULL, name STRING, state STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, x BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT id, seller FROM auction A
WHERE reserve > 5 OR EXISTS (SELECT * FROM person P WHERE P.id > A.seller);
