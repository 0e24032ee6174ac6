-- Nexmark q19 (the 10 highest bids of each auction) over the generated files: Top-N with
-- ROW_NUMBER, the rank in the output. The official query, unchanged.
-- ${NEXMARK_DIR} is replaced by scripts/bench_nexmark.py (the generated data's directory).
-- `dateTime` is quoted: DATETIME is a reserved word in Flink SQL.
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
  'path' = '${NEXMARK_DIR}/bid',
  'format' = 'csv'
);

CREATE TABLE nexmark_q19 (auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, `dateTime` TIMESTAMP(3), extra STRING, rank_number BIGINT) WITH ('connector' = 'blackhole');

INSERT INTO nexmark_q19
SELECT * FROM
(SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid)
WHERE rank_number <= 10;
