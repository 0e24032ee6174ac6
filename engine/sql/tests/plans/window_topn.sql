-- Window Top-N: a PARTITION BY with window_start and window_end of a window TVF
-- or of a window aggregation ranks each window when it fires (append-only); a
-- Top-1 on the time attribute descending is a window deduplication keeping the
-- last row. Without window_end in the PARTITION BY it is a regular Top-N.
CREATE TABLE bids (bidtime TIMESTAMP(3), price INT, item STRING, supplier_id STRING,
  WATERMARK FOR bidtime AS bidtime - INTERVAL '5' MINUTE) WITH ('connector' = 'datagen');
CREATE TABLE top_bids (window_start TIMESTAMP(3), rownum BIGINT, item STRING, price INT) WITH ('connector' = 'print');
CREATE TABLE top_suppliers (window_start TIMESTAMP(3), supplier_id STRING, total INT) WITH ('connector' = 'print');
CREATE TABLE last_bids (window_start TIMESTAMP(3), item STRING, price INT) WITH ('connector' = 'print');
CREATE TABLE not_windowed (window_start TIMESTAMP(3), item STRING, price INT) WITH ('connector' = 'print');

INSERT INTO top_bids
SELECT window_start, rownum, item, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
) WHERE rownum <= 3;

INSERT INTO top_suppliers
SELECT window_start, supplier_id, total FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY total DESC) AS rownum
  FROM (
    SELECT window_start, window_end, supplier_id, SUM(price) AS total
    FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
    GROUP BY window_start, window_end, supplier_id
  )
) WHERE rownum <= 2;

INSERT INTO last_bids
SELECT window_start, item, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, item ORDER BY bidtime DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
) WHERE rownum <= 1;

INSERT INTO not_windowed
SELECT window_start, item, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
) WHERE rownum <= 1;
