-- A correlated scalar subquery in the HAVING of an aggregation is refused, as Flink 2.3 fails to plan it.
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (seller BIGINT, n BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT a.seller, COUNT(*) FROM auction a GROUP BY a.seller
  HAVING COUNT(*) > (SELECT COUNT(*) FROM bid b WHERE b.bidder = a.seller);
