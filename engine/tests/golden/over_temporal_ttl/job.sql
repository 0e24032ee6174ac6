-- compare: materialized
-- With a state TTL, an OVER aggregation (ROWS bounded, ROWS unbounded, RANGE unbounded keep
-- a processing-time TTL in Flink; RANGE bounded takes none and cleans by event time) and an
-- event-time temporal join keep their results while state lives. The TTL is long enough
-- that nothing expires during the run (expiry is processing time, so not deterministic in
-- Flink: it is tested in the operators' unit tests with a fixed clock). Rows of different
-- keys fired by one watermark come in timer order, which Flink does not fix, so the final
-- tables are compared.
SET 'table.exec.state.ttl' = '1 h';

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

CREATE TABLE last2 (order_id BIGINT, currency STRING, s INT)
WITH ('connector' = 'print', 'print-identifier' = 'last2');

CREATE TABLE seen (order_id BIGINT, currency STRING, c BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'seen');

CREATE TABLE running_sum (order_id BIGINT, currency STRING, s INT)
WITH ('connector' = 'print', 'print-identifier' = 'running_sum');

CREATE TABLE last5s (order_id BIGINT, currency STRING, s INT)
WITH ('connector' = 'print', 'print-identifier' = 'last5s');

CREATE TABLE priced (order_id BIGINT, currency STRING, rate DECIMAL(10, 4))
WITH ('connector' = 'print', 'print-identifier' = 'priced');

EXECUTE STATEMENT SET BEGIN
INSERT INTO last2
SELECT order_id, currency,
  SUM(price) OVER (PARTITION BY currency ORDER BY order_time ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
FROM orders;
INSERT INTO seen
SELECT order_id, currency,
  COUNT(*) OVER (PARTITION BY currency ORDER BY order_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
FROM orders;
INSERT INTO running_sum
SELECT order_id, currency, SUM(price) OVER (PARTITION BY currency ORDER BY order_time)
FROM orders;
INSERT INTO last5s
SELECT order_id, currency,
  SUM(price) OVER (PARTITION BY currency ORDER BY order_time RANGE BETWEEN INTERVAL '5' SECOND PRECEDING AND CURRENT ROW)
FROM orders;
INSERT INTO priced
SELECT o.order_id, o.currency, r.rate
FROM orders AS o
LEFT JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON o.currency = r.currency;
END;
