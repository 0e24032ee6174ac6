-- State benchmark (scripts/bench_state.py): keyed window state that stays resident.
-- A monitored filesystem source (unbounded: the job never finishes) reads @DATA_DIR@,
-- CSV lines `k,t,v,payload` with one line per distinct key, the same event time on every
-- line and a 64-character payload. A one-day TUMBLE window per key never fires, so the
-- window operator holds one entry (COUNT, SUM, MAX(payload)) per key: state ~ keys x entry.
CREATE TABLE src (
  k BIGINT,
  t BIGINT,
  v INT,
  payload STRING,
  ts AS TO_TIMESTAMP_LTZ(t, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '@DATA_DIR@',
  'format' = 'csv',
  'source.monitor-interval' = '1s'
);

CREATE TABLE sink (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  k BIGINT,
  cnt BIGINT,
  total INT,
  max_payload STRING
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO sink
SELECT window_start, window_end, k, COUNT(*) AS cnt, SUM(v) AS total, MAX(payload) AS max_payload
FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '1' DAY))
GROUP BY window_start, window_end, k;
