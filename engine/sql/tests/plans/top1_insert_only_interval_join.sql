-- An insert-only Top-1 (rn = 1, ORDER BY price ASC: Flink 2.3 plans it as a deduplication
-- keeping the first row) joined with time bounds: an interval join of its rows read as
-- inserts, as Flink plans it (a regular join if the Top-1 were updating), whose output is
-- append-only.
CREATE TABLE bids (
  seq INT,
  auction BIGINT,
  price BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/tmp/bids.json', 'format' = 'json');

CREATE VIEW cheapest AS
SELECT seq, auction, price, ts FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price ASC) AS rn FROM bids
) WHERE rn = 1;

CREATE TABLE out1 (c_seq INT, b_seq INT, auction BIGINT) WITH ('connector' = 'filesystem', 'path' = '/tmp/out', 'format' = 'csv');

INSERT INTO out1
SELECT c.seq, b.seq, c.auction FROM cheapest c JOIN bids b
ON c.auction = b.auction AND b.ts BETWEEN c.ts AND c.ts + INTERVAL '3' SECOND;
