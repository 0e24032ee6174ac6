-- Scalar subqueries in an aggregation: those of the SELECT list and HAVING join its output
-- (LEFT, without a key), one in an aggregate's argument joins its input.
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o1 (seller BIGINT, share BIGINT) WITH ('connector' = 'print');
CREATE TABLE o2 (seller BIGINT, above BIGINT) WITH ('connector' = 'print');
INSERT INTO o1 SELECT seller, COUNT(*) * 100 / (SELECT COUNT(*) FROM auction) FROM auction GROUP BY seller
  HAVING COUNT(*) > (SELECT COUNT(*) / 10 FROM auction);
INSERT INTO o2 SELECT seller, SUM(reserve - (SELECT MIN(reserve) FROM auction)) FROM auction GROUP BY seller;
