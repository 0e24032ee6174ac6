-- Interval joins: event times bounded on both sides (BETWEEN, or two comparisons, one strict,
-- one of them in WHERE), with and without equality keys. The output keeps the left input's
-- time attribute and is append-only, even for an outer interval join. One bound only is a
-- regular join, as in Flink.
CREATE TABLE orders (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen');
CREATE TABLE shipments (order_id BIGINT, sts TIMESTAMP(3), WATERMARK FOR sts AS sts - INTERVAL '1' SECOND)
WITH ('connector' = 'datagen');
CREATE TABLE out1 (id BIGINT, ts TIMESTAMP(3), sts TIMESTAMP(3)) WITH ('connector' = 'print');
CREATE TABLE out2 (id BIGINT, ts TIMESTAMP(3), sts TIMESTAMP(3)) WITH ('connector' = 'print');
CREATE TABLE out3 (id BIGINT, ts TIMESTAMP(3), sts TIMESTAMP(3)) WITH ('connector' = 'print');
CREATE TABLE out4 (id BIGINT, ts TIMESTAMP(3), sts TIMESTAMP(3)) WITH ('connector' = 'print');

EXECUTE STATEMENT SET BEGIN
INSERT INTO out1 SELECT o.id, o.ts, s.sts FROM orders AS o LEFT JOIN shipments AS s
  ON o.id = s.order_id AND s.sts BETWEEN o.ts AND o.ts + INTERVAL '4' HOUR;
INSERT INTO out2 SELECT o.id, o.ts, s.sts FROM orders AS o JOIN shipments AS s ON o.id = s.order_id
  WHERE o.ts > s.sts - INTERVAL '10' MINUTE AND o.ts <= s.sts;
INSERT INTO out3 SELECT o.id, o.ts, s.sts FROM orders AS o, shipments AS s
  WHERE o.ts BETWEEN s.sts - INTERVAL '1' SECOND AND s.sts + INTERVAL '1' SECOND;
INSERT INTO out4 SELECT o.id, o.ts, s.sts FROM orders AS o JOIN shipments AS s ON o.id = s.order_id AND o.ts >= s.sts;
END;
