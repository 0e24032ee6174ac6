-- compare: materialized
-- Nexmark q9 (winning bid): a regular join of auctions and bids with a residual time
-- predicate, then Top-1 per auction (the row number not selected), printed two ways. Two
-- sources feed the join, so rows reach the Top-1 in an order that depends on how the sources
-- interleave; the inputs' prices are unique so that the winners do not. `winning_bid` orders
-- by price DESC alone: Flink retracts each replaced winner (-U/+U) and the final table is the
-- winners. The official ORDER BY price DESC, dateTime ASC makes Flink 2.3 print lone +U rows
-- (see topn_top1_changelog), whose materialized table keeps every interim winner and so
-- depends on the arrival order: `max_winning` reads it through MAX per auction instead, which
-- does not. `top3`: the three best bids per auction with their row numbers.
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

CREATE TABLE winning_bid (
  id BIGINT, itemName STRING, initialBid BIGINT, reserve BIGINT, `dateTime` TIMESTAMP(3),
  expires TIMESTAMP(3), seller BIGINT, category BIGINT,
  auction BIGINT, bidder BIGINT, price BIGINT, bid_dateTime TIMESTAMP(3), bid_extra STRING
) WITH ('connector' = 'print', 'print-identifier' = 'winning_bid');

CREATE TABLE max_winning (id BIGINT, price BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'max_winning');

CREATE TABLE top3 (id BIGINT, category BIGINT, bidder BIGINT, price BIGINT, rownum BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'top3');

CREATE VIEW joined AS
SELECT A.*, B.auction, B.bidder, B.price, B.`dateTime` AS bid_dateTime, B.extra AS bid_extra
FROM auction A, bid B
WHERE A.id = B.auction AND B.`dateTime` BETWEEN A.`dateTime` AND A.expires;

EXECUTE STATEMENT SET BEGIN
INSERT INTO winning_bid
SELECT id, itemName, initialBid, reserve, `dateTime`, expires, seller, category,
       auction, bidder, price, bid_dateTime, bid_extra
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY id ORDER BY price DESC) AS rownum FROM joined
)
WHERE rownum <= 1;
INSERT INTO max_winning
SELECT id, MAX(price) FROM (
  SELECT id, price,
    ROW_NUMBER() OVER (PARTITION BY id ORDER BY price DESC, bid_dateTime ASC) AS rownum
  FROM joined
)
WHERE rownum <= 1
GROUP BY id;
INSERT INTO top3
SELECT id, category, bidder, price, rownum FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY id ORDER BY price DESC, bid_dateTime ASC) AS rownum
  FROM joined
)
WHERE rownum <= 3;
END;
