-- A SESSION window whose GROUP BY keys differ from its PARTITION BY.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (customer STRING, total DECIMAL(10, 2)) WITH ('connector' = 'print');

CREATE TABLE per_session (window_start TIMESTAMP(3), customer STRING, n BIGINT) WITH ('connector' = 'print');

INSERT INTO per_session
SELECT window_start, customer, COUNT(*)
FROM TABLE(SESSION(TABLE orders, DESCRIPTOR(ts), INTERVAL '5' MINUTE))
GROUP BY window_start, window_end, customer;
