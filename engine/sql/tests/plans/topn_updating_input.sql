-- Top-N over an updating input (the last price per item, a deduplication that
-- keeps the last row): the Rank reads row kinds; its unique key is the category
-- and the row number.
CREATE TABLE prices (item STRING, cat STRING, price INT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'datagen');
CREATE TABLE out (cat STRING, rn BIGINT, item STRING, price INT) WITH ('connector' = 'print');

CREATE VIEW latest AS
SELECT item, cat, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY item ORDER BY ts DESC) AS rn FROM prices
) WHERE rn = 1;

INSERT INTO out
SELECT cat, rn, item, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price DESC) AS rn FROM latest
) WHERE rn <= 2;
