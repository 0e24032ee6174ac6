-- STDDEV_POP, STDDEV_SAMP (and STDDEV), VAR_POP, VAR_SAMP (and VARIANCE) with
-- FILTER, in a TUMBLE window aggregation and in a non-windowed GROUP BY over an
-- updating input; results have the AVG type of the argument.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  units INT,
  ratio DOUBLE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE win (c STRING, a INT, b BIGINT, d DOUBLE, e DECIMAL(38, 6), f INT, g DOUBLE) WITH ('connector' = 'print');
CREATE TABLE upd (n BIGINT, a BIGINT, b DECIMAL(38, 6), c DOUBLE) WITH ('connector' = 'print');

CREATE VIEW per_customer AS SELECT customer, COUNT(*) AS n, MAX(total) AS top, SUM(units) AS u FROM orders GROUP BY customer;

INSERT INTO win
SELECT customer, STDDEV_POP(units), VAR_SAMP(order_id), STDDEV(ratio), VAR_POP(total),
       VARIANCE(units) FILTER (WHERE ratio > 0.5), STDDEV_SAMP(ratio)
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, customer;

INSERT INTO upd
SELECT n, VAR_POP(n), STDDEV_SAMP(top) FILTER (WHERE u > 1), VARIANCE(CAST(u AS DOUBLE))
FROM per_customer GROUP BY n;
