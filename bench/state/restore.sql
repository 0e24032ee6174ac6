-- Restore benchmark (scripts/bench_restore.py): a non-windowed GROUP BY whose keyed
-- state is restored from a savepoint, and how soon it answers afterwards.
-- A monitored filesystem source (unbounded) reads @DATA_DIR@, CSV lines `k,t,v,payload`,
-- one line per distinct key while the state is built, v < 1000. The HAVING keeps
-- every group out of the output until a row with v >= 1,000,000 reaches it: the
-- rows written after the restore do, so the first printed row is the first output
-- record of the restored job.
CREATE TABLE src (
  k BIGINT,
  t BIGINT,
  v INT,
  payload STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '@DATA_DIR@',
  'format' = 'csv',
  'source.monitor-interval' = '200ms'
);

CREATE TABLE sink (
  k BIGINT,
  cnt BIGINT,
  total INT,
  max_payload STRING
) WITH (
  'connector' = 'print'
);

INSERT INTO sink
SELECT k, COUNT(*) AS cnt, SUM(v) AS total, MAX(payload) AS max_payload
FROM src
GROUP BY k
HAVING MAX(v) >= 1000000;
