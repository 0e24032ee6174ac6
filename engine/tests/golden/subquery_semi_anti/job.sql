-- compare: materialized
-- IN, NOT IN, EXISTS and NOT EXISTS subqueries in WHERE (semi and anti joins, as Flink's
-- subquery removal plans them) over Nexmark-style persons, auctions and bids: over append-only
-- and updating subqueries, correlated with an equality and a non-equality, NOT IN over a
-- nullable column (no key: one subtask), and aggregated downstream. Two or more sources feed
-- each join, so the printed changelogs interleave differently; the final tables are compared.
CREATE TABLE person (
  id BIGINT, name STRING, emailAddress STRING, creditCard STRING, city STRING, state STRING,
  `dateTime` TIMESTAMP(3), extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/person.json', 'format' = 'json');

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

CREATE TABLE sellers_in_or (id BIGINT, seller BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'sellers_in_or');
CREATE TABLE never_sold (id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'never_sold');
CREATE TABLE busy_sellers (id BIGINT, seller BIGINT, category BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'busy_sellers');
CREATE TABLE not_in_cat10 (auction BIGINT, price BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'not_in_cat10');
CREATE TABLE big_bidders (id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'big_bidders');
CREATE TABLE unbeaten (id BIGINT, reserve BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'unbeaten');
CREATE TABLE hot_sellers (seller BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'hot_sellers');

EXECUTE STATEMENT SET BEGIN
INSERT INTO sellers_in_or SELECT id, seller FROM auction WHERE seller IN (SELECT id FROM person WHERE state = 'OR');
INSERT INTO never_sold SELECT id, name FROM person P WHERE NOT EXISTS (SELECT * FROM auction A WHERE A.seller = P.id);
INSERT INTO busy_sellers SELECT id, seller, category FROM auction
WHERE seller IN (SELECT seller FROM auction GROUP BY seller HAVING COUNT(*) > 3) AND category <> 12;
INSERT INTO not_in_cat10 SELECT auction, price FROM bid
WHERE auction NOT IN (SELECT id FROM auction WHERE category = 10) AND price > 2000000;
INSERT INTO big_bidders SELECT id, name FROM person P
WHERE EXISTS (SELECT * FROM bid B WHERE B.bidder = P.id AND B.price > 2500000);
INSERT INTO unbeaten SELECT id, reserve FROM auction A
WHERE NOT EXISTS (SELECT 1 FROM bid B WHERE B.auction = A.id AND B.price < A.reserve);
INSERT INTO hot_sellers SELECT seller, COUNT(*) FROM auction
WHERE id IN (SELECT auction FROM bid WHERE price > 1500000) GROUP BY seller;
END;
