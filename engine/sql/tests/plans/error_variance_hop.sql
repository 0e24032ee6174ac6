-- STDDEV/VAR in TUMBLE windows: Flink merges per-bundle Welford accumulators.
CREATE TABLE orders (
  units INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');
CREATE TABLE out (v INT) WITH ('connector' = 'print');

INSERT INTO out
SELECT VAR_POP(units)
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end;
