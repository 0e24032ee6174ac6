-- Kafka metadata columns (Flink's METADATA [FROM 'key'] [VIRTUAL]): read by the source,
-- usable by computed columns and the watermark; a VIRTUAL column is not written by a sink,
-- so the INSERT provides every sink column but `part`.
CREATE TABLE orders (
  id BIGINT,
  amount DOUBLE,
  `partition` INT METADATA VIRTUAL,
  `offset` BIGINT METADATA VIRTUAL,
  event_time TIMESTAMP_LTZ(3) METADATA FROM 'timestamp',
  even_partition AS MOD(`partition`, 2) = 0,
  WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = 'orders',
  'properties.bootstrap.servers' = 'localhost:9092',
  'format' = 'json'
);

CREATE TABLE enriched (
  id BIGINT,
  amount DOUBLE,
  part INT METADATA FROM 'partition' VIRTUAL,
  ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp'
) WITH (
  'connector' = 'kafka',
  'topic' = 'enriched',
  'properties.bootstrap.servers' = 'localhost:9092',
  'format' = 'json'
);

INSERT INTO enriched
SELECT id, amount * 2, event_time FROM orders WHERE `offset` >= 0 AND `partition` < 8;
