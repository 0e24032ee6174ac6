-- compare: materialized
-- Stateless Nexmark queries over a few dozen bids: q1 (DECIMAL arithmetic `0.908 * price`),
-- q2 (a filter on auction ids), q10 (DATE_FORMAT to day and minute), q14 without its UDF
-- (CASE WHEN on HOUR, DECIMAL comparisons in WHERE; unfiltered with more scalar functions),
-- q21 (CASE WHEN with LOWER and
-- REGEXP_EXTRACT on the url) and q22 (SPLIT_INDEX of the url). Every row is an insert;
-- the tables are compared as sets of rows.
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

CREATE TABLE q1 (auction BIGINT, bidder BIGINT, price DECIMAL(23, 3), `dateTime` TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'q1');

CREATE TABLE q2 (auction BIGINT, price BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'q2');

CREATE TABLE q10 (auction BIGINT, price BIGINT, `dt` STRING, `hm` STRING)
WITH ('connector' = 'print', 'print-identifier' = 'q10');

CREATE TABLE q14 (auction BIGINT, price DECIMAL(23, 3), bidTimeType STRING, `dateTime` TIMESTAMP(3), ratio DOUBLE)
WITH ('connector' = 'print', 'print-identifier' = 'q14');

CREATE TABLE q21 (auction BIGINT, price BIGINT, channel STRING, channel_id STRING)
WITH ('connector' = 'print', 'print-identifier' = 'q21');

CREATE TABLE q22 (auction BIGINT, price BIGINT, dir1 STRING, dir2 STRING, dir3 STRING)
WITH ('connector' = 'print', 'print-identifier' = 'q22');

CREATE TABLE q14_all (auction BIGINT, bidTimeType STRING, hr BIGINT, mi BIGINT, dom BIGINT, p_double DOUBLE, p_round DECIMAL(23, 1), len INT, up STRING, sub STRING)
WITH ('connector' = 'print', 'print-identifier' = 'q14_all');

EXECUTE STATEMENT SET BEGIN
INSERT INTO q1 SELECT auction, bidder, 0.908 * price AS price, `dateTime` FROM bid;
INSERT INTO q2 SELECT auction, price FROM bid WHERE MOD(auction, 3) = 0 OR auction = 1004;
INSERT INTO q10
SELECT auction, price, DATE_FORMAT(`dateTime`, 'yyyy-MM-dd'), DATE_FORMAT(`dateTime`, 'HH:mm') FROM bid;
INSERT INTO q14
SELECT auction, 0.908 * price AS price,
  CASE
    WHEN HOUR(`dateTime`) >= 8 AND HOUR(`dateTime`) <= 18 THEN 'dayTime'
    WHEN HOUR(`dateTime`) <= 6 OR HOUR(`dateTime`) >= 20 THEN 'nightTime'
    ELSE 'otherTime'
  END AS bidTimeType,
  `dateTime`, price / 3.0e0
FROM bid
WHERE 0.908 * price > 9000 AND 0.908 * price < 2000000;
INSERT INTO q21
SELECT auction, price, channel,
  CASE
    WHEN lower(channel) = 'apple' THEN '0'
    WHEN lower(channel) = 'google' THEN '1'
    WHEN lower(channel) = 'facebook' THEN '2'
    WHEN lower(channel) = 'baidu' THEN '3'
    ELSE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)
  END AS channel_id
FROM bid
WHERE REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2) IS NOT NULL OR
      lower(channel) IN ('apple', 'google', 'facebook', 'baidu');
INSERT INTO q22
SELECT auction, price, SPLIT_INDEX(url, '/', 3), SPLIT_INDEX(url, '/', 4), SPLIT_INDEX(url, '/', 5)
FROM bid;
INSERT INTO q14_all
SELECT auction,
  CASE
    WHEN HOUR(`dateTime`) >= 8 AND HOUR(`dateTime`) <= 18 THEN 'dayTime'
    WHEN HOUR(`dateTime`) <= 6 OR HOUR(`dateTime`) >= 20 THEN 'nightTime'
    ELSE 'otherTime'
  END,
  HOUR(`dateTime`), MINUTE(`dateTime`), DAYOFMONTH(`dateTime`),
  CAST(price AS DOUBLE) * 0.908, ROUND(price * 0.908, 1), CHAR_LENGTH(extra), UPPER(channel),
  SUBSTRING(url, 9, 15)
FROM bid;
END;
