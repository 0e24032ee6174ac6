-- A scalar subquery in a WHERE and in a SELECT list: a LEFT JOIN without a key with the
-- subquery's row, whose column stands for it.
CREATE TABLE person (id BIGINT NOT NULL, name STRING, state STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, x BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT id, reserve - (SELECT MAX(reserve) FROM auction) FROM auction WHERE reserve > (SELECT AVG(reserve) FROM auction WHERE seller > 5);
