-- compare: changelog
-- Top-1 per auction over an append-only input (Nexmark q9's shape without its join): with two
-- ORDER BY keys, one descending key, one ascending key, and the row number selected (rn = 1,
-- a constant). Flink 2.3 plans a Top-1 without a row number (or with a constant one) over an
-- append-only input as an insert-only deduplication unless its ORDER BY is exactly one
-- descending key: the new top row is then a lone +U, without the -U of the old one. A COUNT
-- per auction over such a Top-1 counts every +U as one more row, as in Flink. Also the
-- second best (rn = 2, a constant row number) with and without it selected, and the first and
-- last bid per auction on the time attribute with the (constant) row number selected, which
-- Flink plans as deduplications. Printed
-- changelogs are compared at p=1, so which of -U/+U Flink prints is checked.
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

CREATE TABLE top_two_keys (auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'top_two_keys');

CREATE TABLE top_one_key (auction BIGINT, bidder BIGINT, price BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'top_one_key');

CREATE TABLE top_with_rn (auction BIGINT, price BIGINT, rn BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'top_with_rn');

CREATE TABLE top_asc (auction BIGINT, bidder BIGINT, price BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'top_asc');

CREATE TABLE top_count (auction BIGINT, n BIGINT, best BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'top_count');

CREATE TABLE second_best (auction BIGINT, price BIGINT, rn BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'second_best');

CREATE TABLE second_best_no_rn (auction BIGINT, bidder BIGINT, price BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'second_best_no_rn');

CREATE TABLE first_with_rn (auction BIGINT, price BIGINT, rn BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'first_with_rn');

CREATE TABLE last_with_rn (auction BIGINT, price BIGINT, rn BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'last_with_rn');

EXECUTE STATEMENT SET BEGIN
INSERT INTO top_two_keys
SELECT auction, bidder, price, `dateTime` FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, `dateTime` ASC) AS rn
  FROM bid
) WHERE rn <= 1;
INSERT INTO top_one_key
SELECT auction, bidder, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rn
  FROM bid
) WHERE rn <= 1;
INSERT INTO top_with_rn
SELECT auction, price, rn FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, bidder ASC) AS rn
  FROM bid
) WHERE rn = 1;
INSERT INTO top_asc
SELECT auction, bidder, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price ASC) AS rn
  FROM bid
) WHERE rn <= 1;
INSERT INTO top_count
SELECT auction, COUNT(*), MAX(price) FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, `dateTime` ASC) AS rn
  FROM bid
) WHERE rn <= 1
GROUP BY auction;
INSERT INTO second_best
SELECT auction, price, rn FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, `dateTime` ASC) AS rn
  FROM bid
) WHERE rn = 2;
INSERT INTO second_best_no_rn
SELECT auction, bidder, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, `dateTime` ASC) AS rn
  FROM bid
) WHERE rn = 2;
INSERT INTO first_with_rn
SELECT auction, price, rn FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY `dateTime` ASC) AS rn FROM bid
) WHERE rn = 1;
INSERT INTO last_with_rn
SELECT auction, price, rn FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY `dateTime` DESC) AS rn FROM bid
) WHERE rn <= 1;
END;
