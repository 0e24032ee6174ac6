-- Scalar subqueries that may return more than one row (per outer row): their rows are counted
-- and a second one fails the job (Flink's SINGLE_VALUE), uncorrelated and correlated, also one
-- with its own GROUP BY and HAVING or DISTINCT (grouped first, then one row per key of the
-- correlation).
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, m BIGINT, r BIGINT, g BIGINT, d BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT a.id, (SELECT b.price FROM bid b WHERE b.auction = a.id),
  (SELECT reserve FROM auction WHERE id = 7),
  (SELECT COUNT(*) FROM bid b WHERE b.auction = a.id GROUP BY b.auction HAVING MAX(b.price) > 10),
  (SELECT DISTINCT b.bidder FROM bid b WHERE b.auction = a.id) FROM auction a;
