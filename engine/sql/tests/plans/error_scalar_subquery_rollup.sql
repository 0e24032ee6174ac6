-- A scalar subquery in the SELECT list of a ROLLUP aggregation is refused.
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (seller BIGINT, share BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT seller, COUNT(*) * 100 / (SELECT COUNT(*) FROM auction) FROM auction GROUP BY ROLLUP (seller);
