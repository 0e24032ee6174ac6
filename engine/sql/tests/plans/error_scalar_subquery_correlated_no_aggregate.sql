-- A correlated scalar subquery without an aggregate is refused (Flink's SINGLE_VALUE checks at run
-- time that it returns at most one row).
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, m BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT a.id, (SELECT b.price FROM bid b WHERE b.auction = a.id) FROM auction a;
