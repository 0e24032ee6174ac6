-- Out-of-order input, all within the 5 s watermark bound: no event is dropped, so the
-- result equals that of the sorted input.
CREATE TABLE readings (
  seq BIGINT,
  device STRING,
  reading INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/readings.json',
  'format' = 'json'
);

CREATE TABLE per_device (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  device STRING,
  n BIGINT,
  total INT,
  min_seq BIGINT,
  max_seq BIGINT,
  min_reading INT,
  max_reading INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/per_device',
  'format' = 'json'
);

CREATE TABLE hop_all (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  n BIGINT,
  total INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/hop_all',
  'format' = 'json'
);

INSERT INTO per_device
SELECT window_start, window_end, device, COUNT(*) AS n, SUM(reading) AS total,
       MIN(seq) AS min_seq, MAX(seq) AS max_seq, MIN(reading) AS min_reading, MAX(reading) AS max_reading
FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, device;

INSERT INTO hop_all
SELECT window_start, window_end, COUNT(*) AS n, SUM(reading) AS total
FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
GROUP BY window_start, window_end;
