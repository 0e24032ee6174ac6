-- A correlated EXISTS in HAVING is refused, as Flink 2.3 fails to plan it (NullPointerException).
CREATE TABLE person (id BIGINT NOT NULL, name STRING, state STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, x BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT seller, COUNT(*) FROM auction GROUP BY seller
HAVING COUNT(*) > 2 OR NOT EXISTS (SELECT 1 FROM person WHERE person.id = auction.seller);
