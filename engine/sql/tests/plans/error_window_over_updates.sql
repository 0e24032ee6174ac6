-- A window TVF cannot read the updates of a non-windowed aggregation.
CREATE TABLE clicks (usr STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
WITH ('connector' = 'filesystem', 'path' = '/data/clicks.json', 'format' = 'json');

CREATE TABLE out (usr STRING, n BIGINT) WITH ('connector' = 'print');

CREATE VIEW per_user AS SELECT usr, MAX(ts) AS ts, COUNT(*) AS n FROM clicks GROUP BY usr;

INSERT INTO out
SELECT usr, SUM(n)
FROM TABLE(TUMBLE(TABLE per_user, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, usr;
