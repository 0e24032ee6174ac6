-- compare: materialized
-- Interval joins: shipments within 2 hours after their order (BETWEEN, inner), and orders with
-- the shipments up to 30 minutes before or after them (two comparisons, one strict, LEFT OUTER:
-- an order without one is emitted null-padded once the watermark passes its bound). Every
-- row is an insert; when padded rows come depends on the watermarks of both inputs, so the
-- final tables are compared. Shipments within 10 minutes of any order (no keys: one subtask
-- joins all rows, as in Flink). A windowed count over the inner join's output reads the
-- order's time attribute, which the interval join keeps (Flink refuses to write two time
-- attributes to one sink, so the shipment's is cast to a plain TIMESTAMP).
CREATE TABLE orders (
  id BIGINT,
  customer STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE shipments (
  order_id BIGINT,
  carrier STRING,
  sts TIMESTAMP(3),
  WATERMARK FOR sts AS sts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/shipments.json',
  'format' = 'json'
);

CREATE TABLE shipped (id BIGINT, customer STRING, carrier STRING, ts TIMESTAMP(3), sts TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'shipped');

CREATE TABLE nearby (id BIGINT, carrier STRING, sts TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'nearby');

CREATE TABLE close_pairs (id BIGINT, order_id BIGINT, carrier STRING)
WITH ('connector' = 'print', 'print-identifier' = 'close_pairs');

CREATE TABLE per_hour (window_start TIMESTAMP(3), shipped BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'per_hour');

CREATE VIEW shipped_orders AS
SELECT o.id, o.customer, s.carrier, o.ts, CAST(s.sts AS TIMESTAMP(3)) AS sts
FROM orders AS o JOIN shipments AS s
  ON o.id = s.order_id AND s.sts BETWEEN o.ts AND o.ts + INTERVAL '2' HOUR;

EXECUTE STATEMENT SET BEGIN
INSERT INTO shipped SELECT * FROM shipped_orders;
INSERT INTO nearby
SELECT o.id, s.carrier, CAST(s.sts AS TIMESTAMP(3))
FROM orders AS o LEFT JOIN shipments AS s
  ON o.id = s.order_id AND s.sts > o.ts - INTERVAL '30' MINUTE AND s.sts <= o.ts + INTERVAL '30' MINUTE;
INSERT INTO close_pairs
SELECT o.id, s.order_id, s.carrier FROM orders AS o, shipments AS s
WHERE o.ts BETWEEN s.sts - INTERVAL '10' MINUTE AND s.sts + INTERVAL '10' MINUTE;
INSERT INTO per_hour
SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE shipped_orders, DESCRIPTOR(ts), INTERVAL '1' HOUR))
GROUP BY window_start, window_end;
END;
