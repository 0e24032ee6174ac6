-- A processing-time temporal join is a lookup join in Flink, which needs a lookup source.
CREATE TABLE orders (id BIGINT, cur STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE rates (cur STRING, rate DOUBLE, uts TIMESTAMP(3), WATERMARK FOR uts AS uts, PRIMARY KEY (cur) NOT ENFORCED) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, rate DOUBLE) WITH ('connector' = 'print');

INSERT INTO out SELECT o.id, r.rate FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF PROCTIME() AS r ON o.cur = r.cur;
