-- A correlated IN in HAVING is refused (Flink 2.3 fails to plan it too).
CREATE TABLE person (id BIGINT NOT NULL, name STRING, state STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, x BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT seller, COUNT(*) FROM auction GROUP BY seller
HAVING seller IN (SELECT id FROM person WHERE person.name = auction.seller);
