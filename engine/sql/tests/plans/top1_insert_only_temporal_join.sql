-- An insert-only Top-1 (rn = 1, ORDER BY price ASC) as the left input of an event-time
-- temporal join: it keeps its time attribute, so the join reads it, and the output keeps its
-- row kinds (+I, then a lone +U for each cheaper row), as Flink's TemporalRowTimeJoinOperator.
-- Its changelog is the left input's, insert-only for Flink: an append-only sink takes it.
CREATE TABLE bids (
  seq INT,
  auction BIGINT,
  price BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/tmp/bids.json', 'format' = 'json');

CREATE TABLE rates (
  auction BIGINT,
  rate BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND,
  PRIMARY KEY (auction) NOT ENFORCED
) WITH ('connector' = 'filesystem', 'path' = '/tmp/rates.json', 'format' = 'json');

CREATE VIEW cheapest AS
SELECT seq, auction, price, ts FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price ASC) AS rn FROM bids
) WHERE rn = 1;

CREATE TABLE out1 (seq INT, auction BIGINT, price BIGINT, rate BIGINT)
WITH ('connector' = 'filesystem', 'path' = '/tmp/out', 'format' = 'csv');

INSERT INTO out1
SELECT c.seq, c.auction, c.price, r.rate
FROM cheapest c JOIN rates FOR SYSTEM_TIME AS OF c.ts AS r ON c.auction = r.auction;
