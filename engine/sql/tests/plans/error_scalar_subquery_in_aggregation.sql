-- A scalar subquery in the SELECT list of an aggregation is refused, with the way around it.
CREATE TABLE person (id BIGINT NOT NULL, name STRING, state STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, x BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT seller, COUNT(*) * 100 / (SELECT COUNT(*) FROM auction) FROM auction GROUP BY seller;
