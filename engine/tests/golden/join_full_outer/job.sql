-- compare: materialized
-- FULL OUTER JOIN: rows of either side without a match are padded, and their padded rows are
-- retracted when a match arrives (on either side), with duplicates on both sides and keys of
-- an expression (LOWER) on one side. The changelog depends on how the two sources
-- interleave; the final table does not.
CREATE TABLE stock (
  sku STRING,
  warehouse STRING,
  qty INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/stock.json',
  'format' = 'json'
);

CREATE TABLE catalog (
  code STRING,
  title STRING,
  price DOUBLE
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/catalog.json',
  'format' = 'json'
);

CREATE TABLE merged (sku STRING, warehouse STRING, qty INT, code STRING, title STRING, price DOUBLE)
WITH ('connector' = 'print', 'print-identifier' = 'merged');

INSERT INTO merged
SELECT s.sku, s.warehouse, s.qty, c.code, c.title, c.price
FROM stock AS s FULL OUTER JOIN catalog AS c ON s.sku = LOWER(c.code);
