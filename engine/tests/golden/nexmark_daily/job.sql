-- compare: materialized
-- Nexmark q15, q16 and q17: non-windowed GROUP BYs on DATE_FORMAT(dateTime, 'yyyy-MM-dd')
-- (bids on both sides of midnight), with COUNT(*) FILTER, COUNT(DISTINCT ...) with and without
-- FILTER, MAX of a formatted minute, and per-auction SUM/MIN/MAX/AVG; DECIMAL and DOUBLE
-- sums and averages per day. Updating aggregates,
-- so the final tables are compared.
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

CREATE TABLE q15 (
  `day` STRING, total_bids BIGINT, rank1_bids BIGINT, rank2_bids BIGINT, rank3_bids BIGINT,
  total_bidders BIGINT, rank1_bidders BIGINT, rank2_bidders BIGINT, rank3_bidders BIGINT,
  total_auctions BIGINT, rank1_auctions BIGINT, rank2_auctions BIGINT, rank3_auctions BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'q15');

CREATE TABLE q16 (
  channel STRING, `day` STRING, `minute` STRING, total_bids BIGINT, rank1_bids BIGINT,
  total_bidders BIGINT, rank3_bidders BIGINT, total_auctions BIGINT, rank2_auctions BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'q16');

CREATE TABLE q17 (
  auction BIGINT, `day` STRING, total_bids BIGINT, rank1_bids BIGINT, rank2_bids BIGINT,
  rank3_bids BIGINT, min_price BIGINT, max_price BIGINT, avg_price BIGINT, sum_price BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'q17');

CREATE TABLE money (
  `day` STRING, total DECIMAL(38, 3), avg_dec DECIMAL(38, 6), avg_dbl DOUBLE, min_channel STRING,
  channels BIGINT, avg_int BIGINT, big_bids BIGINT, max_hour BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'money');

EXECUTE STATEMENT SET BEGIN
INSERT INTO q15
SELECT
  DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') AS `day`,
  count(*) AS total_bids,
  count(*) filter (where price < 10000) AS rank1_bids,
  count(*) filter (where price >= 10000 and price < 1000000) AS rank2_bids,
  count(*) filter (where price >= 1000000) AS rank3_bids,
  count(distinct bidder) AS total_bidders,
  count(distinct bidder) filter (where price < 10000) AS rank1_bidders,
  count(distinct bidder) filter (where price >= 10000 and price < 1000000) AS rank2_bidders,
  count(distinct bidder) filter (where price >= 1000000) AS rank3_bidders,
  count(distinct auction) AS total_auctions,
  count(distinct auction) filter (where price < 10000) AS rank1_auctions,
  count(distinct auction) filter (where price >= 10000 and price < 1000000) AS rank2_auctions,
  count(distinct auction) filter (where price >= 1000000) AS rank3_auctions
FROM bid
GROUP BY DATE_FORMAT(`dateTime`, 'yyyy-MM-dd');
INSERT INTO q16
SELECT
  channel,
  DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') AS `day`,
  max(DATE_FORMAT(`dateTime`, 'HH:mm')) AS `minute`,
  count(*) AS total_bids,
  count(*) filter (where price < 10000) AS rank1_bids,
  count(distinct bidder) AS total_bidders,
  count(distinct bidder) filter (where price >= 1000000) AS rank3_bidders,
  count(distinct auction) AS total_auctions,
  count(distinct auction) filter (where price >= 10000 and price < 1000000) AS rank2_auctions
FROM bid
GROUP BY channel, DATE_FORMAT(`dateTime`, 'yyyy-MM-dd');
INSERT INTO q17
SELECT
  auction,
  DATE_FORMAT(`dateTime`, 'yyyy-MM-dd') AS `day`,
  count(*) AS total_bids,
  count(*) filter (where price < 10000) AS rank1_bids,
  count(*) filter (where price >= 10000 and price < 1000000) AS rank2_bids,
  count(*) filter (where price >= 1000000) AS rank3_bids,
  min(price) AS min_price,
  max(price) AS max_price,
  avg(price) AS avg_price,
  sum(price) AS sum_price
FROM bid
GROUP BY auction, DATE_FORMAT(`dateTime`, 'yyyy-MM-dd');
INSERT INTO money
SELECT
  DATE_FORMAT(`dateTime`, 'yyyy-MM-dd'),
  SUM(0.908 * price), AVG(0.908 * price), AVG(CAST(price AS DOUBLE)), MIN(channel),
  COUNT(DISTINCT channel), SUM(price) / COUNT(*), SUM(CASE WHEN price >= 1000000 THEN 1 ELSE 0 END),
  MAX(HOUR(`dateTime`))
FROM bid
GROUP BY DATE_FORMAT(`dateTime`, 'yyyy-MM-dd');
END;
