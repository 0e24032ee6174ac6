-- compare: materialized
-- Top-N over an updating input: the latest price of each item (deduplication keeping
-- the last row on event time), then the two most expensive items per category, with
-- and without the row number. Items move up and down and leave the top 2.
CREATE TABLE prices (
  item STRING,
  cat STRING,
  price INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/prices.json',
  'format' = 'json'
);

CREATE TABLE top2 (
  cat STRING,
  rn BIGINT,
  item STRING,
  price INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'top2'
);

CREATE TABLE top2_items (
  cat STRING,
  item STRING,
  price INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'top2_items'
);

CREATE VIEW latest AS
SELECT item, cat, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY item ORDER BY ts DESC) AS rn FROM prices
) WHERE rn = 1;

INSERT INTO top2
SELECT cat, rn, item, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price DESC) AS rn FROM latest
) WHERE rn <= 2;

INSERT INTO top2_items
SELECT cat, item, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price DESC) AS rn FROM latest
) WHERE rn <= 2;
