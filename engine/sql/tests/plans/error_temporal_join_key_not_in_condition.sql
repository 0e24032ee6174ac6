-- The versioned table's primary key must be among the equalities.
CREATE TABLE orders (id BIGINT, cur STRING, price INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE rates (cur STRING, region STRING, rate DOUBLE, uts TIMESTAMP(3), WATERMARK FOR uts AS uts, PRIMARY KEY (cur, region) NOT ENFORCED) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, rate DOUBLE) WITH ('connector' = 'print');

INSERT INTO out SELECT o.id, r.rate FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.ts AS r ON o.cur = r.cur;
