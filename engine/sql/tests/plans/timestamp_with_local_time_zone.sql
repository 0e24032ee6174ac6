-- Flink's long form of TIMESTAMP_LTZ: TIMESTAMP[(p)] WITH LOCAL TIME ZONE, in a column
-- type, a watermark's column and a CAST.
CREATE TABLE events (
  id BIGINT,
  ts TIMESTAMP(3) WITH LOCAL TIME ZONE,
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o (id BIGINT, ts TIMESTAMP WITH LOCAL TIME ZONE, t TIMESTAMP(3)) WITH ('connector' = 'print');
INSERT INTO o SELECT id, ts, CAST(CAST(ts AS TIMESTAMP(3) WITH LOCAL TIME ZONE) AS TIMESTAMP(3)) FROM events;
