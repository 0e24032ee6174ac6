-- CSV in, CSV out: quoting of strings, empty strings vs NULL, timestamps, decimals, booleans.
CREATE TABLE shipments (
  id INT,
  carrier STRING,
  weight DOUBLE,
  cost DECIMAL(8, 2),
  fragile BOOLEAN,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/shipments.csv',
  'format' = 'csv'
);

CREATE TABLE shipments_out (
  id INT,
  carrier STRING,
  carrier_or_null STRING,
  label STRING,
  weight DOUBLE,
  cost DECIMAL(8, 2),
  cost_per_kg DOUBLE,
  fragile BOOLEAN,
  heavy BOOLEAN,
  ts TIMESTAMP(3),
  minute_ts TIMESTAMP(3)
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/shipments_out',
  'format' = 'csv'
);

CREATE TABLE carrier_stats (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  carrier STRING,
  n BIGINT,
  total_weight DOUBLE,
  total_cost DECIMAL(38, 2),
  max_cost DECIMAL(8, 2)
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/carrier_stats',
  'format' = 'csv'
);

INSERT INTO shipments_out
SELECT id, carrier,
       CASE WHEN carrier = '' THEN CAST(NULL AS STRING) ELSE carrier END AS carrier_or_null,
       CONCAT('#', CAST(id AS STRING), ' ', carrier) AS label,
       weight, cost,
       CAST(cost AS DOUBLE) / weight AS cost_per_kg,
       fragile,
       CASE WHEN weight > 100 THEN TRUE WHEN weight < 1 THEN FALSE ELSE CAST(NULL AS BOOLEAN) END AS heavy,
       ts,
       FLOOR(ts TO MINUTE) AS minute_ts
FROM shipments;

INSERT INTO carrier_stats
SELECT window_start, window_end, carrier, COUNT(*) AS n, SUM(weight) AS total_weight,
       SUM(cost) AS total_cost, MAX(cost) AS max_cost
FROM TABLE(TUMBLE(TABLE shipments, DESCRIPTOR(ts), INTERVAL '20' SECOND))
GROUP BY window_start, window_end, carrier;
