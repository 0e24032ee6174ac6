-- Event-time temporal joins: against a table with a primary key and a watermark (LEFT, with a
-- condition on the version found and one on the orders), against a versioned view (the last
-- rate per currency on event time, INNER), and against an upsert-kafka table.
CREATE TABLE orders (id BIGINT, cur STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE rates (cur STRING, rate DOUBLE, uts TIMESTAMP(3), WATERMARK FOR uts AS uts, PRIMARY KEY (cur) NOT ENFORCED)
WITH ('connector' = 'datagen');
CREATE TABLE rates_log (cur STRING, rate DOUBLE, uts TIMESTAMP(3), WATERMARK FOR uts AS uts) WITH ('connector' = 'datagen');
CREATE TABLE rates_kafka (cur STRING, rate DOUBLE, uts TIMESTAMP(3), WATERMARK FOR uts AS uts, PRIMARY KEY (cur) NOT ENFORCED)
WITH ('connector' = 'upsert-kafka', 'topic' = 'rates', 'properties.bootstrap.servers' = 'localhost:9092', 'key.format' = 'json', 'value.format' = 'json');
CREATE TABLE out1 (id BIGINT, rate DOUBLE, ts TIMESTAMP(3)) WITH ('connector' = 'print');
CREATE TABLE out2 (id BIGINT, rate DOUBLE) WITH ('connector' = 'print');
CREATE TABLE out3 (id BIGINT, rate DOUBLE) WITH ('connector' = 'print');
CREATE VIEW last_rates AS
SELECT cur, rate, uts FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY cur ORDER BY uts DESC) AS rn FROM rates_log
) WHERE rn = 1;

INSERT INTO out1
SELECT o.id, r.rate, o.ts FROM orders AS o
LEFT JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur AND r.rate < 2 AND o.price > 10;
INSERT INTO out2
SELECT o.id, r.rate FROM orders AS o
JOIN last_rates FOR SYSTEM_TIME AS OF o.ts AS r ON r.cur = o.cur AND o.price > 10;
INSERT INTO out3
SELECT o.id, r.rate FROM orders AS o
JOIN rates_kafka FOR SYSTEM_TIME AS OF o.ts AS r ON r.cur = o.cur;
