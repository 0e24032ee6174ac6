-- compare: materialized
-- Scalar subqueries in a WHERE and in a SELECT list: the FROM joined, without a key, with the
-- subquery's single row (Flink's plan); the rows it reaches are retracted and emitted again as
-- its value changes. Two sources: the final tables are compared.
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

CREATE TABLE min_category (id BIGINT, category BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'min_category');
CREATE TABLE over_max_bid (auction BIGINT, price BIGINT, over_max BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'over_max_bid');
EXECUTE STATEMENT SET BEGIN
INSERT INTO min_category SELECT id, category FROM auction WHERE category = (SELECT MIN(category) FROM auction WHERE reserve > 90000);
INSERT INTO over_max_bid SELECT auction, price, price - (SELECT MAX(initialBid) FROM auction) AS over_max FROM bid WHERE price > 2800000;
END;
