-- FIRST_VALUE, LAST_VALUE, LISTAGG and SUM/AVG/MIN/MAX(DISTINCT), with NULLs
-- and FILTER, in TUMBLE windows; LISTAGG and the DISTINCT aggregates (which
-- Flink can merge) in CUMULATE and SESSION windows, the DISTINCT ones in HOP
-- windows (Sluice refuses LISTAGG there; not SUM(DISTINCT) either: Flink 2.3's
-- two-phase HOP aggregation fails on it at runtime, "This function does not
-- support retraction"). One input file,
-- rows in time order, so arrival order is the same at any parallelism.
CREATE TABLE bids (
  id BIGINT,
  channel STRING,
  bidder STRING,
  price INT,
  amount DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/bids.json',
  'format' = 'json'
);

CREATE TABLE tumbled (
  window_start TIMESTAMP(3),
  channel STRING,
  first_bidder STRING,
  last_price INT,
  first_big_price INT,
  last_amount DECIMAL(10, 2),
  bidders STRING,
  bidders_semi STRING,
  sum_d INT,
  avg_d INT,
  min_d INT,
  max_d INT,
  sum_amount_d DECIMAL(38, 2),
  avg_amount_d DECIMAL(38, 6),
  cnt BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/tumbled',
  'format' = 'json'
);

CREATE TABLE hopped (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  channel STRING,
  avg_amount_d DECIMAL(38, 6),
  max_d INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/hopped',
  'format' = 'json'
);

CREATE TABLE cumulated (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  bidders STRING,
  sum_d INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/cumulated',
  'format' = 'json'
);

CREATE TABLE sessions (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  channel STRING,
  big_bidders STRING,
  sum_d INT,
  avg_d INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/sessions',
  'format' = 'json'
);

INSERT INTO tumbled
SELECT window_start, channel,
  FIRST_VALUE(bidder), LAST_VALUE(price), FIRST_VALUE(price) FILTER (WHERE price > 30), LAST_VALUE(amount),
  LISTAGG(bidder), LISTAGG(bidder, '; ') FILTER (WHERE price IS NOT NULL),
  SUM(DISTINCT price), AVG(DISTINCT price), MIN(DISTINCT price), MAX(DISTINCT price),
  SUM(DISTINCT amount), AVG(DISTINCT amount) FILTER (WHERE bidder <> 'eve'), COUNT(*)
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, channel;

INSERT INTO hopped
SELECT window_start, window_end, channel, AVG(DISTINCT amount), MAX(DISTINCT price)
FROM TABLE(HOP(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
GROUP BY window_start, window_end, channel;

INSERT INTO cumulated
SELECT window_start, window_end, LISTAGG(bidder, '|'), SUM(DISTINCT price)
FROM TABLE(CUMULATE(TABLE bids, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND))
GROUP BY window_start, window_end;

INSERT INTO sessions
SELECT window_start, window_end, channel, LISTAGG(bidder) FILTER (WHERE price > 20), SUM(DISTINCT price), AVG(DISTINCT price)
FROM TABLE(SESSION(TABLE bids PARTITION BY channel, DESCRIPTOR(ts), INTERVAL '2' SECOND))
GROUP BY window_start, window_end, channel;
