-- A scalar subquery correlated by inequalities alone is refused (Flink joins it with the outer
-- query's distinct values without a key, in one subtask; Sluice keys that join by an equality).
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, m BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT a.id, (SELECT MAX(b.price) FROM bid b WHERE b.auction > a.id AND b.price > a.reserve) FROM auction a;
