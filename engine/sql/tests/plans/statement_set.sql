-- One source, three sinks in one statement set: a projection, a window aggregate and a
-- filter (engine/tests/golden/multi_sink).
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  status STRING,
  total DECIMAL(10, 2),
  priority BOOLEAN,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE orders_json (
  order_id BIGINT,
  customer STRING,
  status STRING,
  total DECIMAL(10, 2),
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = '/out/orders_json', 'format' = 'json');

CREATE TABLE status_csv (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  status STRING,
  orders BIGINT,
  revenue DECIMAL(38, 2),
  avg_total DECIMAL(38, 6),
  any_priority BOOLEAN
) WITH ('connector' = 'filesystem', 'path' = '/out/status_csv', 'format' = 'csv');

CREATE TABLE priority_json (
  order_id BIGINT,
  customer STRING,
  priority BOOLEAN,
  total_cents BIGINT
) WITH ('connector' = 'filesystem', 'path' = '/out/priority_json', 'format' = 'json');

EXECUTE STATEMENT SET
BEGIN
INSERT INTO orders_json SELECT order_id, customer, status, total, ts FROM orders;
INSERT INTO status_csv
SELECT window_start, window_end, status, COUNT(*) AS orders, SUM(total) AS revenue,
       AVG(total) AS avg_total, MAX(priority) AS any_priority
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, status;
INSERT INTO priority_json
SELECT order_id, customer, priority, CAST(total * 100 AS BIGINT) AS total_cents
FROM orders WHERE priority AND status <> 'CANCELLED';
END;
