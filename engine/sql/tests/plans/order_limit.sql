CREATE TABLE bids (id BIGINT, price BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
WITH ('connector' = 'filesystem', 'path' = '/data/bids.json', 'format' = 'json');

CREATE TABLE sorted (id BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'filesystem', 'path' = '/out', 'format' = 'json');
CREATE TABLE top3 (id BIGINT, price BIGINT) WITH ('connector' = 'print');

EXECUTE STATEMENT SET BEGIN
INSERT INTO sorted SELECT id, ts FROM bids ORDER BY ts, id DESC;
INSERT INTO top3 SELECT id, price FROM bids ORDER BY price DESC LIMIT 3;
END;
