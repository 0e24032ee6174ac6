-- compare: materialized
-- The comma form of the event-time temporal join: FROM o, r FOR SYSTEM_TIME AS OF o.ts WHERE
-- ..., an INNER temporal join whose condition comes from WHERE (Flink's
-- LogicalCorrelateToJoinFromTemporalTableRule, with a filter). The two queries are those of
-- temporal_join's big_orders and cheap_inner written with a comma, so their expected files
-- are Flink's output for those (copied from temporal_join/expected; make_goldens.py
-- regenerates them from this job).
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

CREATE TABLE rates (
  currency STRING,
  rate DECIMAL(10, 4),
  update_time TIMESTAMP(3),
  WATERMARK FOR update_time AS update_time - INTERVAL '2' SECOND,
  PRIMARY KEY (currency) NOT ENFORCED
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/rates.json',
  'format' = 'json'
);

CREATE TABLE cheap_inner (order_id BIGINT, rate DECIMAL(10, 4))
WITH ('connector' = 'print', 'print-identifier' = 'cheap_inner');

CREATE TABLE big_orders (order_id BIGINT, rate DECIMAL(10, 4))
WITH ('connector' = 'print', 'print-identifier' = 'big_orders');

EXECUTE STATEMENT SET BEGIN
INSERT INTO cheap_inner
SELECT o.order_id, r.rate
FROM orders AS o, rates FOR SYSTEM_TIME AS OF o.order_time AS r
WHERE o.currency = r.currency AND r.rate < 1.14;
INSERT INTO big_orders
SELECT o.order_id, r.rate
FROM orders AS o, rates FOR SYSTEM_TIME AS OF o.order_time AS r
WHERE r.currency = o.currency AND o.price > 25;
END;
