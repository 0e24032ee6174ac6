-- DATE read from csv (java.sql.Date.valueOf: one-digit months and days too)
-- and json (yyyy-MM-dd), written to csv and json: edge values (0001-01-01,
-- 9999-12-31, before 1970, a leap day, NULL), DATE literals, CAST(TIMESTAMP AS
-- DATE), CAST to and from STRING, comparisons, a join on a DATE key, and
-- MIN/MAX/COUNT of a DATE in a window.
CREATE TABLE events (
  id INT,
  grp STRING,
  d DATE,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/events.csv',
  'format' = 'csv',
  'csv.null-literal' = 'NULL'
);

CREATE TABLE holidays (
  `day` DATE,
  name STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/holidays.json',
  'format' = 'json'
);

CREATE TABLE projected (
  id INT,
  d DATE,
  d_str STRING,
  ts_date DATE,
  lit DATE,
  from_str DATE,
  after_2000 BOOLEAN,
  is_lit BOOLEAN
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/projected',
  'format' = 'csv'
);

CREATE TABLE projected_json (
  id INT,
  d DATE,
  ts_date DATE
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/projected_json',
  'format' = 'json'
);

CREATE TABLE joined (
  id INT,
  d DATE,
  name STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/joined',
  'format' = 'json'
);

CREATE TABLE windowed (
  window_start TIMESTAMP(3),
  grp STRING,
  n BIGINT,
  min_d DATE,
  max_d DATE
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/windowed',
  'format' = 'csv'
);

INSERT INTO projected
SELECT id, d, CAST(d AS STRING), CAST(ts AS DATE), DATE '2024-01-01', CAST('2023-12-31' AS DATE),
       d > DATE '2000-01-01', d = DATE '2024-01-01'
FROM events;

INSERT INTO projected_json
SELECT id, d, CAST(ts AS DATE) FROM events;

INSERT INTO joined
SELECT e.id, e.d, h.name
FROM events AS e
JOIN holidays AS h ON e.d = h.`day`;

INSERT INTO windowed
SELECT window_start, grp, COUNT(d), MIN(d), MAX(d)
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, grp;
