-- LAST_VALUE has no merge in Flink, which SESSION windows need.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  units INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (c STRING, l BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT customer, LAST_VALUE(order_id)
FROM TABLE(SESSION(TABLE orders PARTITION BY customer, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY window_start, window_end, customer;
