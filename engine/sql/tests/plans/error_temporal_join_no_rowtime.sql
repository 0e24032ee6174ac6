-- A versioned table needs an event-time attribute (Flink's message).
CREATE TABLE orders (id BIGINT, cur STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE rates (cur STRING, rate DOUBLE, uts TIMESTAMP(3), PRIMARY KEY (cur) NOT ENFORCED) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, rate DOUBLE) WITH ('connector' = 'print');

INSERT INTO out SELECT o.id, r.rate FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur;
