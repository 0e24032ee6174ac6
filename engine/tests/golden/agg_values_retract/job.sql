-- compare: materialized
-- FIRST_VALUE, LAST_VALUE, LISTAGG and SUM/AVG/MIN/MAX(DISTINCT) over updating
-- inputs, with NULLs and FILTER. `top3` (a Top-N keyed by auction, as is the
-- aggregation over it) retracts a bid when three higher ones arrive, so the
-- retractable FIRST_VALUE/LAST_VALUE/LISTAGG remove values from the middle of
-- their lists; each auction's rows reach the aggregation in one order at any
-- parallelism. `by_count` aggregates another GROUP BY (order-independent
-- aggregates only, since its input comes from several subtasks).
CREATE TABLE bids (
  auction BIGINT,
  bidder STRING,
  price INT,
  channel STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/bids.json',
  'format' = 'json'
);

CREATE VIEW top3 AS
SELECT auction, bidder, price, channel FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rn FROM bids
) WHERE rn <= 3;

CREATE VIEW per_bidder AS
SELECT bidder, COUNT(*) AS n, SUM(price) AS total, MAX(channel) AS chan FROM bids GROUP BY bidder;

CREATE TABLE top_values (
  auction BIGINT,
  first_bidder STRING,
  last_bidder STRING,
  first_channel STRING,
  bidders STRING,
  channels STRING,
  sum_d INT,
  avg_d INT,
  min_d INT,
  max_d INT,
  cnt BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'top_values');

CREATE TABLE by_count (
  n BIGINT,
  sum_d INT,
  avg_d INT,
  big_sum_d INT,
  max_d INT,
  users BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'by_count');

INSERT INTO top_values
SELECT auction, FIRST_VALUE(bidder), LAST_VALUE(bidder), FIRST_VALUE(channel) FILTER (WHERE price > 50),
  LISTAGG(bidder), LISTAGG(channel, '/') FILTER (WHERE price > 20),
  SUM(DISTINCT price), AVG(DISTINCT price), MIN(DISTINCT price), MAX(DISTINCT price), COUNT(*)
FROM top3 GROUP BY auction;

INSERT INTO by_count
SELECT n, SUM(DISTINCT total), AVG(DISTINCT total), SUM(DISTINCT total) FILTER (WHERE chan <> 'web'),
  MAX(DISTINCT total), COUNT(*)
FROM per_bidder GROUP BY n;
