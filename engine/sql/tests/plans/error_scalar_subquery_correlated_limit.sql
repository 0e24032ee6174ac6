-- A correlated scalar subquery with ORDER BY and LIMIT is refused.
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, m BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT a.id FROM auction a
WHERE a.reserve < (SELECT b.price FROM bid b WHERE b.auction = a.id ORDER BY b.price DESC LIMIT 1);
