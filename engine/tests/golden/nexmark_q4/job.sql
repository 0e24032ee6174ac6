-- compare: materialized
-- Nexmark q4 (average winning price per category): a regular join of auctions and bids with a
-- residual time predicate, MAX per (auction, category) — an updating aggregate — and AVG per
-- category over it (retractions of the MAX feed the AVG). Also q6-like: the average of the
-- winning prices per seller. Updating results, so the final tables are compared.
CREATE TABLE auction (
  id BIGINT,
  itemName STRING,
  description STRING,
  initialBid BIGINT,
  reserve BIGINT,
  `dateTime` TIMESTAMP(3),
  expires TIMESTAMP(3),
  seller BIGINT,
  category BIGINT,
  extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/auction.json',
  'format' = 'json'
);

CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  channel STRING,
  url STRING,
  `dateTime` TIMESTAMP(3),
  extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/bid.json',
  'format' = 'json'
);

CREATE TABLE per_category (category BIGINT, avg_final BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'per_category');

CREATE TABLE per_seller (seller BIGINT, avg_final DOUBLE, n BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'per_seller');

CREATE VIEW winning AS
SELECT MAX(B.price) AS final, A.category, A.seller
FROM auction A, bid B
WHERE A.id = B.auction AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires
GROUP BY A.id, A.category, A.seller;

EXECUTE STATEMENT SET BEGIN
INSERT INTO per_category
SELECT Q.category, AVG(Q.final) FROM winning Q GROUP BY Q.category;
INSERT INTO per_seller
SELECT seller, AVG(CAST(final AS DOUBLE)), COUNT(*) FROM winning GROUP BY seller;
END;
