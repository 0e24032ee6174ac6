-- A window aggregation over a window join, grouped by the join's window_start and
-- window_end: a window aggregation attached to those windows (append-only), as in Flink.
CREATE TABLE l (id INT, v INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'filesystem', 'path' = '/tmp/l.json', 'format' = 'json');
CREATE TABLE r (id INT, w INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'filesystem', 'path' = '/tmp/r.json', 'format' = 'json');
CREATE TABLE out (ws TIMESTAMP(3), we TIMESTAMP(3), id INT, c BIGINT, s INT) WITH ('connector' = 'filesystem', 'path' = '/tmp/out', 'format' = 'csv');

INSERT INTO out
SELECT window_start, window_end, id, COUNT(*), SUM(v) FROM (
  SELECT L.window_start, L.window_end, L.id, L.v, R.w
  FROM (SELECT * FROM TABLE(TUMBLE(TABLE l, DESCRIPTOR(ts), INTERVAL '5' SECOND))) L
  JOIN (SELECT * FROM TABLE(TUMBLE(TABLE r, DESCRIPTOR(ts), INTERVAL '5' SECOND))) R
  ON L.id = R.id AND L.window_start = R.window_start AND L.window_end = R.window_end
) GROUP BY window_start, window_end, id;
