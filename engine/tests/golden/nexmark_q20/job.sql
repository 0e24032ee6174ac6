-- compare: materialized
-- Nexmark q20 (expand bids with their auction): a regular inner join of bids and auctions on
-- the auction id, the auction side filtered on its category. Also q3-like: a join whose
-- auction side is filtered before the join and whose output is projected with arithmetic.
-- Either side may arrive first, so the final table is compared.
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

CREATE TABLE q20 (
  auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, bid_dateTime TIMESTAMP(3),
  itemName STRING, initialBid BIGINT, reserve BIGINT, `dateTime` TIMESTAMP(3), seller BIGINT,
  category BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'q20');

CREATE TABLE below_reserve (auction BIGINT, price BIGINT, gap BIGINT, category BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'below_reserve');

EXECUTE STATEMENT SET BEGIN
INSERT INTO q20
SELECT B.auction, B.bidder, B.price, B.channel, B.`dateTime`,
       A.itemName, A.initialBid, A.reserve, A.`dateTime`, A.seller, A.category
FROM bid AS B INNER JOIN auction AS A ON B.auction = A.id
WHERE A.category = 10;
INSERT INTO below_reserve
SELECT B.auction, B.price, A.reserve - B.price, A.category
FROM bid AS B JOIN (SELECT * FROM auction WHERE category <> 11) AS A ON B.auction = A.id
WHERE B.price < A.reserve * 10;
END;
