-- Correlated scalar subqueries: the subquery aggregated GROUP BY its side of the correlation and
-- LEFT JOINed on it, its SELECT expression computed over the joined row (a COUNT over no rows
-- reads 0); the columns they bring are not part of `*`. A correlation that is not equalities alone
-- goes through the outer query's distinct values of the columns it reads (Calcite's value generator).
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o1 (id BIGINT, m BIGINT, n BIGINT) WITH ('connector' = 'print');
CREATE TABLE o2 (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'print');
CREATE TABLE o3 (id BIGINT, n BIGINT) WITH ('connector' = 'print');
INSERT INTO o1 SELECT a.id, (SELECT MAX(b.price) FROM bid b WHERE b.auction = a.id AND b.price > 10),
  (SELECT COUNT(*) + 1 FROM bid b WHERE b.auction = a.id AND a.seller = b.bidder) FROM auction a;
INSERT INTO o2 SELECT * FROM bid b WHERE price > (SELECT AVG(price) FROM bid b2 WHERE b2.auction = b.auction);
INSERT INTO o3 SELECT a.id, (SELECT COUNT(*) FROM bid b WHERE b.auction = a.id AND b.price > a.reserve) FROM auction a;
