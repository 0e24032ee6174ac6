-- compare: changelog
-- Deduplication keeping the first row per user on event time (ORDER BY ts ASC, rn = 1, rn not
-- in the output): out-of-order rows, equal timestamps and a late row.
CREATE TABLE clicks (
  seq INT,
  usr STRING,
  page STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '3' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/clicks.json',
  'format' = 'json'
);

CREATE TABLE first_click (
  usr STRING,
  seq INT,
  page STRING,
  ts TIMESTAMP(3)
) WITH (
  'connector' = 'print',
  'print-identifier' = 'first_click'
);

INSERT INTO first_click
SELECT usr, seq, page, ts FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY usr ORDER BY ts ASC) AS rn FROM clicks
) WHERE rn = 1;
