-- compare: materialized
-- Event-time temporal joins (FOR SYSTEM_TIME AS OF) of orders against a versioned table: a
-- filesystem table with a PRIMARY KEY and a watermark. Each order is joined, once the watermark
-- of both inputs passes its time, with the rate valid at its time (the latest version at or
-- before it): orders before any version, at a version's exact time, out of order (within the
-- watermark delay), of a currency without rates, and with a null key. INNER drops orders
-- without a version, LEFT pads them with nulls; a condition on the versioned side is checked
-- on the version found (it does not pick an older version; LEFT pads, INNER drops), one on
-- the orders side of an INNER join filters them. Every row is an insert; the order of rows of different keys depends
-- on when each input's watermark arrives, so the final tables are compared.
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

CREATE TABLE priced (order_id BIGINT, price INT, rate DECIMAL(10, 4), order_time TIMESTAMP(3), update_time TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'priced');

CREATE TABLE priced_all (order_id BIGINT, currency STRING, rate DECIMAL(10, 4), update_time TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'priced_all');

CREATE TABLE cheap_rate (order_id BIGINT, rate DECIMAL(10, 4))
WITH ('connector' = 'print', 'print-identifier' = 'cheap_rate');

CREATE TABLE cheap_inner (order_id BIGINT, rate DECIMAL(10, 4))
WITH ('connector' = 'print', 'print-identifier' = 'cheap_inner');

CREATE TABLE big_orders (order_id BIGINT, rate DECIMAL(10, 4))
WITH ('connector' = 'print', 'print-identifier' = 'big_orders');

EXECUTE STATEMENT SET BEGIN
INSERT INTO priced
SELECT o.order_id, o.price, r.rate, o.order_time, CAST(r.update_time AS TIMESTAMP(3))
FROM orders AS o
JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON o.currency = r.currency;
INSERT INTO priced_all
SELECT o.order_id, o.currency, r.rate, CAST(r.update_time AS TIMESTAMP(3))
FROM orders AS o
LEFT JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON o.currency = r.currency;
INSERT INTO cheap_rate
SELECT o.order_id, r.rate
FROM orders AS o
LEFT JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON o.currency = r.currency AND r.rate < 1.14;
INSERT INTO cheap_inner
SELECT o.order_id, r.rate
FROM orders AS o
JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON o.currency = r.currency AND r.rate < 1.14;
INSERT INTO big_orders
SELECT o.order_id, r.rate
FROM orders AS o
JOIN rates FOR SYSTEM_TIME AS OF o.order_time AS r
ON r.currency = o.currency AND o.price > 25;
END;
