-- compare: materialized
-- Correlated scalar subqueries, decorrelated as Flink (Calcite) does: the subquery aggregated
-- GROUP BY its side of the correlation (one or two keys), LEFT JOINed on it, and its SELECT
-- expression computed over the joined row, so that an auction without a matching bid reads NULL
-- for MAX, 0 for COUNT and COALESCE's default. In a SELECT list and in a WHERE (also one that
-- tests a COUNT for 0). A subquery without an aggregate (a lookup of one auction's reserve), or
-- with SELECT DISTINCT, is checked to return one row per key (Flink's SINGLE_VALUE). A
-- correlation with an inequality (`b.price > a.reserve * 40`) goes through the auctions'
-- distinct (id, reserve) values, as Calcite's value generator. A subquery with its own GROUP BY
-- and HAVING returns no row for an auction of 8 bids or fewer: NULL there, not 0. Two sources
-- feed each join: the final tables are compared.
CREATE TABLE auction (
  id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT,
  `dateTime` TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/auction.json', 'format' = 'json');

CREATE TABLE bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  `dateTime` TIMESTAMP(3), extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/bid.json', 'format' = 'json');

CREATE TABLE max_bid (id BIGINT, max_price BIGINT, big_bids BIGINT, best_or_zero BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'max_bid');
CREATE TABLE above_avg (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'above_avg');
CREATE TABLE no_big_bid (id BIGINT, seller BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'no_big_bid');
CREATE TABLE own_bids (id BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'own_bids');
CREATE TABLE over_reserve (id BIGINT, n BIGINT, below BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'over_reserve');
CREATE TABLE many_bids (id BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'many_bids');
CREATE TABLE bid_reserve (auction BIGINT, price BIGINT, reserve BIGINT, seller BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'bid_reserve');

EXECUTE STATEMENT SET BEGIN
INSERT INTO max_bid SELECT a.id,
  (SELECT MAX(b.price) FROM bid b WHERE b.auction = a.id),
  (SELECT COUNT(*) FROM bid b WHERE b.auction = a.id AND b.price > 2500000),
  (SELECT COALESCE(MAX(b.price), 0) FROM bid b WHERE a.id = b.auction AND b.channel = 'Apple')
FROM auction a;
INSERT INTO above_avg SELECT auction, bidder, price FROM bid b
WHERE price > (SELECT AVG(price) FROM bid b2 WHERE b2.auction = b.auction) AND bidder < 1005;
INSERT INTO no_big_bid SELECT id, seller FROM auction a
WHERE (SELECT COUNT(*) FROM bid b WHERE b.auction = a.id AND b.price > 2500000) = 0;
INSERT INTO own_bids SELECT a.id, (SELECT COUNT(b.price) + 1 FROM bid b WHERE b.auction = a.id AND b.bidder = a.seller - 10) FROM auction a;
INSERT INTO bid_reserve SELECT auction, price, (SELECT a.reserve FROM auction a WHERE a.id = b.auction),
  (SELECT DISTINCT a.seller FROM auction a WHERE a.id = b.auction) FROM bid b WHERE price > 2500000;
INSERT INTO over_reserve SELECT a.id,
  (SELECT COUNT(*) FROM bid b WHERE b.auction = a.id AND b.price > a.reserve * 40),
  (SELECT MAX(b.price) FROM bid b WHERE b.auction = a.id AND b.price <= a.reserve * 10)
FROM auction a;
INSERT INTO many_bids SELECT a.id, (SELECT COUNT(*) FROM bid b WHERE b.auction = a.id GROUP BY b.auction HAVING COUNT(*) > 8) FROM auction a;
END;
