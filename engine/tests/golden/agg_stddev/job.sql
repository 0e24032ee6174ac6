-- compare: materialized
-- STDDEV_POP, STDDEV_SAMP (STDDEV), VAR_POP and VAR_SAMP (VARIANCE) over INT,
-- BIGINT, DOUBLE and DECIMAL arguments, with NULLs, FILTER and single-value
-- groups (a NULL sample variance). `tumbled`: TUMBLE windows over rows a little
-- out of order, so Flink's two-phase aggregation merges a window's bundles
-- (Sluice refuses these aggregates in HOP and CUMULATE windows, where Flink
-- merges slices too); `sessions`: SESSION windows. `top_stats`: a non-windowed GROUP BY over a
-- Top-N keyed like it, which retracts a bid when three higher ones arrive, so
-- the Welford accumulators retract; each auction's rows reach the aggregation
-- in one order at any parallelism. One input file, rows nearly in time order.
CREATE TABLE bids (
  id BIGINT,
  auction BIGINT,
  channel STRING,
  price INT,
  qty BIGINT,
  ratio DOUBLE,
  amount DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/bids.json',
  'format' = 'json'
);

CREATE VIEW top3 AS
SELECT auction, channel, price, qty, ratio, amount FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rn FROM bids
) WHERE rn <= 3;

CREATE TABLE tumbled (
  window_start TIMESTAMP(3),
  channel STRING,
  sd_pop_price INT,
  sd_samp_price INT,
  var_pop_price INT,
  var_samp_price INT,
  var_samp_qty BIGINT,
  sd_pop_qty BIGINT,
  sd_pop_ratio DOUBLE,
  sd_samp_ratio DOUBLE,
  var_pop_ratio DOUBLE,
  var_samp_ratio DOUBLE,
  sd_amount DECIMAL(38, 6),
  var_pop_amount DECIMAL(38, 6),
  var_samp_amount DECIMAL(38, 6),
  var_big_ratio DOUBLE,
  cnt BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'tumbled');

CREATE TABLE sessions (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  channel STRING,
  sd_price INT,
  var_qty BIGINT,
  sd_pop_ratio DOUBLE,
  var_samp_ratio DOUBLE,
  var_amount DECIMAL(38, 6),
  cnt BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'sessions');

CREATE TABLE top_stats (
  auction BIGINT,
  sd_pop_price INT,
  var_samp_price INT,
  var_pop_qty BIGINT,
  sd_samp_ratio DOUBLE,
  var_pop_ratio DOUBLE,
  sd_pop_amount DECIMAL(38, 6),
  var_samp_amount DECIMAL(38, 6),
  var_web_ratio DOUBLE,
  cnt BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'top_stats');

INSERT INTO tumbled
SELECT window_start, channel,
  STDDEV_POP(price), STDDEV_SAMP(price), VAR_POP(price), VAR_SAMP(price),
  VAR_SAMP(qty), STDDEV_POP(qty),
  STDDEV_POP(ratio), STDDEV(ratio), VAR_POP(ratio), VARIANCE(ratio),
  STDDEV_SAMP(amount), VAR_POP(amount), VAR_SAMP(amount),
  VAR_POP(ratio) FILTER (WHERE price > 40), COUNT(*)
FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, channel;

INSERT INTO sessions
SELECT window_start, window_end, channel,
  STDDEV(price), VAR_POP(qty), STDDEV_POP(ratio), VAR_SAMP(ratio) FILTER (WHERE qty > 100), VARIANCE(amount), COUNT(*)
FROM TABLE(SESSION(TABLE bids PARTITION BY channel, DESCRIPTOR(ts), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, channel;

INSERT INTO top_stats
SELECT auction, STDDEV_POP(price), VAR_SAMP(price), VAR_POP(qty), STDDEV_SAMP(ratio), VAR_POP(ratio),
  STDDEV_POP(amount), VARIANCE(amount), VAR_SAMP(ratio) FILTER (WHERE channel = 'web'), COUNT(*)
FROM top3 GROUP BY auction;
