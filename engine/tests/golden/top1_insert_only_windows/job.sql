-- compare: materialized
-- An insert-only Top-1 (ROW_NUMBER ... ORDER BY price ASC, rn = 1: Flink 2.3 plans it as a
-- deduplication keeping the first row, insert-only, and its operator emits +I for a key's first
-- row and a lone +U for each cheaper one) read by a TUMBLE aggregation, an OVER aggregation
-- and an interval join, which take every one of its rows as an insert and keep its time
-- attribute.
-- Out-of-order rows within the 5 s watermark delay, none later: which late rows an interval
-- join or a window still takes depends on when watermarks reach each subtask at parallelism 3
-- (the interval join's cleanup timers, as Flink's, are unit-tested in operators/join/interval.rs).
-- Materialized: the order of the keys of one window firing is Flink's hash order.
CREATE TABLE bids (
  seq INT,
  auction BIGINT,
  price BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/bids.json',
  'format' = 'json'
);

CREATE VIEW cheapest AS
SELECT seq, auction, price, ts FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price ASC) AS rn FROM bids
) WHERE rn = 1;

CREATE TABLE per_window (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  auction BIGINT,
  n BIGINT,
  low BIGINT,
  total BIGINT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'per_window'
);

CREATE TABLE running_low (
  seq INT,
  auction BIGINT,
  price BIGINT,
  n BIGINT,
  low BIGINT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'running_low'
);

CREATE TABLE near_cheapest (
  c_seq INT,
  b_seq INT,
  auction BIGINT,
  gap BIGINT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'near_cheapest'
);

INSERT INTO near_cheapest
SELECT c.seq, b.seq, c.auction, b.price - c.price
FROM cheapest c JOIN bids b
ON c.auction = b.auction AND b.ts BETWEEN c.ts AND c.ts + INTERVAL '3' SECOND;

INSERT INTO per_window
SELECT window_start, window_end, auction, COUNT(*), MIN(price), SUM(price)
FROM TABLE(TUMBLE(TABLE cheapest, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, auction;

INSERT INTO running_low
SELECT seq, auction, price,
  COUNT(*) OVER w,
  MIN(price) OVER w
FROM cheapest
WINDOW w AS (PARTITION BY auction ORDER BY ts RANGE BETWEEN INTERVAL '20' SECOND PRECEDING AND CURRENT ROW);
