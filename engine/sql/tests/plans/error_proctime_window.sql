CREATE TABLE clicks (user_id STRING, pt AS PROCTIME())
WITH ('connector' = 'filesystem', 'path' = '/data/clicks.json', 'format' = 'json');

CREATE TABLE out (window_start TIMESTAMP(3), n BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(pt), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end;
