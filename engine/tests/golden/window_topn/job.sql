-- compare: materialized
-- Window Top-N (Flink's window rank): the 3 highest bids per 10-minute window, directly
-- over the window TVF with the row number; the top 2 suppliers per window by total price
-- over a window aggregation; and window deduplication keeping the last bid per item and
-- window (item C twice at 08:19: the later row wins). Rows are emitted when the window fires;
-- a late bid (08:02, after the watermark passed 08:09:59.999) is dropped.
CREATE TABLE bids (
  bidtime TIMESTAMP(3),
  price INT,
  item STRING,
  supplier_id STRING,
  WATERMARK FOR bidtime AS bidtime - INTERVAL '5' MINUTE
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/bids.json',
  'format' = 'json'
);

CREATE TABLE top_bids (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  rownum BIGINT,
  item STRING,
  price INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'top_bids'
);

CREATE TABLE top_suppliers (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  supplier_id STRING,
  total INT,
  cnt BIGINT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'top_suppliers'
);

CREATE TABLE last_bids (
  window_start TIMESTAMP(3),
  item STRING,
  price INT,
  supplier_id STRING
) WITH (
  'connector' = 'print',
  'print-identifier' = 'last_bids'
);

INSERT INTO top_bids
SELECT window_start, window_end, rownum, item, price FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
) WHERE rownum <= 3;

INSERT INTO top_suppliers
SELECT window_start, window_end, supplier_id, total, cnt FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY total DESC) AS rownum
  FROM (
    SELECT window_start, window_end, supplier_id, SUM(price) AS total, COUNT(*) AS cnt
    FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
    GROUP BY window_start, window_end, supplier_id
  )
) WHERE rownum <= 2;

INSERT INTO last_bids
SELECT window_start, item, price, supplier_id FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, item ORDER BY bidtime DESC) AS rownum
  FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
) WHERE rownum <= 1;
