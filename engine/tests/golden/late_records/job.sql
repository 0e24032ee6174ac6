-- Late records: watermark = max(ts) - 2 s, advanced after every record. A record is dropped
-- from a window once that window has fired (window_end - 1 <= watermark); a projection
-- keeps every record.
CREATE TABLE events (
  event_id BIGINT,
  ts TIMESTAMP(3),
  note STRING,
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/events.json',
  'format' = 'json'
);

CREATE TABLE all_events (
  event_id BIGINT,
  ts TIMESTAMP(3)
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/all_events',
  'format' = 'json'
);

CREATE TABLE tumble_counts (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  n BIGINT,
  min_id BIGINT,
  max_id BIGINT,
  sum_id BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/tumble_counts',
  'format' = 'json'
);

CREATE TABLE hop_counts (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  n BIGINT,
  sum_id BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/hop_counts',
  'format' = 'json'
);

INSERT INTO all_events SELECT event_id, ts FROM events;

INSERT INTO tumble_counts
SELECT window_start, window_end, COUNT(*) AS n, MIN(event_id) AS min_id, MAX(event_id) AS max_id,
       SUM(event_id) AS sum_id
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end;

INSERT INTO hop_counts
SELECT window_start, window_end, COUNT(*) AS n, SUM(event_id) AS sum_id
FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
GROUP BY window_start, window_end;
