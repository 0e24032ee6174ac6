-- A window aggregation with a computed group key, aggregate FILTER clauses and HAVING.
CREATE TABLE trades (
  trade_id BIGINT,
  symbol STRING,
  volume INT,
  price DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/trades.json', 'format' = 'json');

CREATE TABLE busy_symbols (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  sym STRING,
  trades BIGINT,
  big_trades BIGINT,
  volume INT
) WITH ('connector' = 'print');

INSERT INTO busy_symbols
SELECT window_start, window_end, UPPER(symbol) AS sym,
       COUNT(*) AS trades,
       COUNT(*) FILTER (WHERE volume > 1000) AS big_trades,
       SUM(volume) AS volume
FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, UPPER(symbol)
HAVING COUNT(*) > 10;
