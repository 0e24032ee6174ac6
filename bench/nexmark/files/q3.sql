-- Nexmark q3 (local item suggestion) over the generated files: a regular inner join of
-- auctions in category 10 with their sellers from OR, ID or CA. The official query, unchanged.
-- ${NEXMARK_DIR} is replaced by scripts/bench_nexmark.py (the generated data's directory).
-- `dateTime` is quoted: DATETIME is a reserved word in Flink SQL.
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
  'path' = '${NEXMARK_DIR}/auction',
  'format' = 'csv'
);

CREATE TABLE person (
  id BIGINT,
  name STRING,
  emailAddress STRING,
  creditCard STRING,
  city STRING,
  state STRING,
  `dateTime` TIMESTAMP(3),
  extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${NEXMARK_DIR}/person',
  'format' = 'csv'
);

CREATE TABLE nexmark_q3 (name STRING, city STRING, state STRING, id BIGINT) WITH ('connector' = 'blackhole');

INSERT INTO nexmark_q3
SELECT P.name, P.city, P.state, A.id
FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');
