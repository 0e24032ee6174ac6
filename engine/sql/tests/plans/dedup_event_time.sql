-- Top-1 on the event-time attribute without the row number: deduplication,
-- keeping the first (ORDER BY ts ASC, append-only, keeps the time attribute) or
-- the last (DESC, updating) row per key. A selected row number of rn = 1 is the
-- constant 1 (Flink's RankNumberColumnRemoveRule): a deduplication too.
CREATE TABLE orders (
  id BIGINT,
  cat STRING,
  price INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'datagen');
CREATE TABLE first_o (id BIGINT, cat STRING, ts TIMESTAMP(3)) WITH ('connector' = 'print');
CREATE TABLE last_o (id BIGINT, cat STRING, ts TIMESTAMP(3)) WITH ('connector' = 'print');
CREATE TABLE top1 (id BIGINT, cat STRING, rn BIGINT) WITH ('connector' = 'print');

CREATE VIEW ranked AS
SELECT id, cat, ts, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY ts) AS rn FROM orders;

INSERT INTO first_o SELECT id, cat, ts FROM ranked WHERE rn = 1;

INSERT INTO last_o
SELECT id, cat, ts FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY ts DESC) AS rn FROM orders
) WHERE rn <= 1;

INSERT INTO top1 SELECT id, cat, rn FROM ranked WHERE rn = 1;
