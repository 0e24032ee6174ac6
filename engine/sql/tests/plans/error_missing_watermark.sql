-- An event-time window over a column that has no WATERMARK, so it is not a time attribute.
CREATE TABLE clicks (
  user_id STRING,
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = '/data/clicks.json', 'format' = 'json');

CREATE TABLE per_minute (window_start TIMESTAMP(3), window_end TIMESTAMP(3), clicks BIGINT)
  WITH ('connector' = 'print');

INSERT INTO per_minute
SELECT window_start, window_end, COUNT(*)
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end;
