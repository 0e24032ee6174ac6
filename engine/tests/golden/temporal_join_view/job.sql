-- compare: materialized
-- An event-time temporal join against a versioned view: an append-only log of rates
-- deduplicated to the last row per currency on event time (ROW_NUMBER() ... ORDER BY
-- update_time DESC = 1), which Flink reads as a versioned table keyed by the currency with
-- update_time as its time attribute. A rate older than the currency's latest (EUR at 3.5 s,
-- after 5 s) is dropped by the deduplication, so it never becomes a version: order 4 (at 4 s)
-- still sees the 1 s rate. INNER and LEFT; every row is an insert, and the order of rows of
-- different keys depends on when each input's watermark arrives, so the final tables are
-- compared.
CREATE TABLE orders (
  order_id BIGINT,
  currency STRING,
  price INT,
  order_time TIMESTAMP(3),
  WATERMARK FOR order_time AS order_time - INTERVAL '3' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE rates_log (
  currency STRING,
  rate DECIMAL(10, 4),
  update_time TIMESTAMP(3),
  WATERMARK FOR update_time AS update_time - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/rates_log.json',
  'format' = 'json'
);

CREATE VIEW rates AS
SELECT currency, rate, update_time FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY currency ORDER BY update_time DESC) AS rownum
  FROM rates_log
) WHERE rownum = 1;

CREATE TABLE priced (order_id BIGINT, price INT, rate DECIMAL(10, 4), order_time TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'priced');

CREATE TABLE priced_all (order_id BIGINT, currency STRING, rate DECIMAL(10, 4), update_time TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'priced_all');

EXECUTE STATEMENT SET BEGIN
INSERT INTO priced
SELECT o.order_id, o.price, r.rate, o.order_time
FROM orders AS o
JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON o.currency = r.currency;
INSERT INTO priced_all
SELECT o.order_id, o.currency, r.rate, CAST(r.update_time AS TIMESTAMP(3))
FROM orders AS o
LEFT JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON o.currency = r.currency;
END;
