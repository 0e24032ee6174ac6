-- FIRST_VALUE, LAST_VALUE, LISTAGG (default and given separator) and
-- SUM/AVG/MIN/MAX(DISTINCT), with FILTER, in a TUMBLE window aggregation and
-- in a non-windowed GROUP BY over an updating input.
CREATE TABLE orders (
  order_id BIGINT,
  customer STRING,
  total DECIMAL(10, 2),
  units INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE win (c STRING, f BIGINT, l DECIMAL(10, 2), names STRING, piped STRING, su INT, au INT, mx INT) WITH ('connector' = 'print');
CREATE TABLE upd (n BIGINT, f STRING, l STRING, names STRING, st DECIMAL(38, 2)) WITH ('connector' = 'print');

CREATE VIEW per_customer AS SELECT customer, COUNT(*) AS n, MAX(total) AS top FROM orders GROUP BY customer;

INSERT INTO win
SELECT customer, FIRST_VALUE(order_id), LAST_VALUE(total) FILTER (WHERE units > 1), LISTAGG(customer),
       LISTAGG(customer, ' | '), SUM(DISTINCT units), AVG(DISTINCT units), MAX(DISTINCT units)
FROM TABLE(TUMBLE(TABLE orders, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, customer;

INSERT INTO upd
SELECT n, FIRST_VALUE(customer), LAST_VALUE(customer), LISTAGG(customer, ';') FILTER (WHERE top > 0), SUM(DISTINCT top)
FROM per_customer GROUP BY n;
