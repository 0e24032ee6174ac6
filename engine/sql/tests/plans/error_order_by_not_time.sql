CREATE TABLE bids (id BIGINT, price BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
WITH ('connector' = 'filesystem', 'path' = '/data/bids.json', 'format' = 'json');

CREATE TABLE out (id BIGINT, price BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT id, price FROM bids ORDER BY price DESC;
