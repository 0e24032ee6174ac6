-- STDDEV/VAR in HOP windows: Flink merges the slices' Welford accumulators.
CREATE TABLE orders (
  units INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');
CREATE TABLE out (v INT) WITH ('connector' = 'print');

INSERT INTO out
SELECT VAR_POP(units)
FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
GROUP BY window_start, window_end;
