-- compare: materialized
-- Window Top-N and window deduplication in Nexmark's style: the auction with the most bids
-- per HOP window (q5 as a Window Top-1 over a window aggregation, ties broken by auction),
-- the first bid per auction per 10-second tumbling window (window deduplication keeping the
-- first row on the time attribute), and the three highest bids per window on two ORDER BY
-- keys without the row number. Window ranks emit when the window closes: inserts only.
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

CREATE TABLE hottest (window_start TIMESTAMP(3), auction BIGINT, num BIGINT, rn BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'hottest');

CREATE TABLE first_bid (window_start TIMESTAMP(3), auction BIGINT, bidder BIGINT, price BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'first_bid');

CREATE TABLE top3 (window_end TIMESTAMP(3), auction BIGINT, price BIGINT, bidder BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'top3');

EXECUTE STATEMENT SET BEGIN
INSERT INTO hottest
SELECT window_start, auction, num, rn FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY num DESC, auction ASC) AS rn
  FROM (
    SELECT window_start, window_end, auction, COUNT(*) AS num
    FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
    GROUP BY window_start, window_end, auction
  )
) WHERE rn <= 1;
INSERT INTO first_bid
SELECT window_start, auction, bidder, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, auction ORDER BY `dateTime` ASC) AS rn
  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
) WHERE rn = 1;
INSERT INTO top3
SELECT window_end, auction, price, bidder FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price DESC, `dateTime` ASC) AS rn
  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
) WHERE rn <= 3;
END;
