-- An upsert-kafka sink keyed by its PRIMARY KEY (Flink's `NOT ENFORCED` constraint, also
-- in the CONSTRAINT form): windowed counts are final, so each (page, window) is written once.
CREATE TABLE clicks (
  page STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'datagen');

CREATE TABLE counts (
  page STRING,
  window_start TIMESTAMP(3),
  n BIGINT,
  CONSTRAINT pk PRIMARY KEY (page, window_start) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka',
  'topic' = 'counts',
  'properties.bootstrap.servers' = 'localhost:9092',
  'key.format' = 'json',
  'value.format' = 'json'
);

INSERT INTO counts
SELECT page, window_start, COUNT(*)
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY page, window_start, window_end;
