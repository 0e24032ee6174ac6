-- A correlated scalar subquery whose WHERE names a column neither query has: that column is the error.
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, m BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT a.id, (SELECT MAX(b.price) FROM bid b WHERE b.auction = a.id AND b.bidr = 3) FROM auction a;
