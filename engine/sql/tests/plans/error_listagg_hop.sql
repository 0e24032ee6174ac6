-- LISTAGG in HOP windows: Flink orders a window's values by slice, latest first.
CREATE TABLE orders (
  customer STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');
CREATE TABLE out (names STRING) WITH ('connector' = 'print');

INSERT INTO out
SELECT LISTAGG(customer)
FROM TABLE(HOP(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
GROUP BY window_start, window_end;
