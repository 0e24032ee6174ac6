-- Hopping windows: size 15 s, slide 5 s (each row is in 3 windows).
CREATE TABLE trades (
  trade_id BIGINT,
  symbol STRING,
  volume INT,
  price DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/trades.json',
  'format' = 'json'
);

CREATE TABLE hop_stats (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  window_time TIMESTAMP(3),
  symbol STRING,
  trades BIGINT,
  volume INT,
  max_price DOUBLE,
  avg_price DOUBLE,
  first_trade BIGINT,
  last_trade BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/hop_stats',
  'format' = 'json'
);

INSERT INTO hop_stats
SELECT window_start, window_end, window_time, symbol,
       COUNT(*) AS trades, SUM(volume) AS volume, MAX(price) AS max_price, AVG(price) AS avg_price,
       MIN(trade_id) AS first_trade, MAX(trade_id) AS last_trade
FROM TABLE(HOP(TABLE trades, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '15' SECOND))
GROUP BY window_start, window_end, window_time, symbol;
