-- A Top-1 that Flink 2.3 plans as insert-only (no row number, over an append-only input, an
-- ORDER BY other than exactly one descending key: see topn_top1_changelog) written to
-- append-only filesystem sinks, which Flink accepts: every new top row of an auction is one
-- more row in the file. Nexmark q9's order (price DESC, dateTime ASC) and one ascending key.
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

CREATE TABLE winners (auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` TIMESTAMP(3))
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/winners', 'format' = 'json');

CREATE TABLE cheapest (auction BIGINT, price BIGINT, extra STRING)
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/cheapest', 'format' = 'csv');

EXECUTE STATEMENT SET BEGIN
INSERT INTO winners
SELECT auction, bidder, price, `dateTime` FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, `dateTime` ASC) AS rn
  FROM bid
) WHERE rn <= 1;
INSERT INTO cheapest
SELECT auction, price, extra FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price ASC) AS rn
  FROM bid
) WHERE rn = 1;
END;
