-- A window TVF without aggregation: each row is repeated for each hopping window it
-- belongs to; a WHERE on window columns filters after the assignment.
CREATE TABLE events (
  event_id BIGINT,
  note STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/events.json', 'format' = 'json');

CREATE TABLE windowed_events (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  event_id BIGINT,
  note STRING
) WITH ('connector' = 'print');

INSERT INTO windowed_events
SELECT window_start, window_end, event_id, note
FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
WHERE window_end > ts;
