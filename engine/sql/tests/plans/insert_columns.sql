-- INSERT INTO a column list: unlisted sink columns get NULL, narrower types are cast;
-- a CTE and a subquery alias with column names feed it.
CREATE TABLE events (
  id INT,
  kind STRING,
  amount INT,
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = '/data/events.json', 'format' = 'json');

CREATE TABLE event_log (
  id BIGINT,
  kind STRING,
  amount DECIMAL(12, 2),
  comment STRING,
  ts TIMESTAMP(3)
) WITH ('connector' = 'print');

INSERT INTO event_log (ts, id, amount)
WITH recent AS (SELECT id, amount, ts FROM events WHERE kind = 'sale')
SELECT e.t, e.i, e.a
FROM (SELECT ts, id, amount FROM recent) AS e (t, i, a);
