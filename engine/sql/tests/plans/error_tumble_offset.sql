-- Flink's TUMBLE requires abs(offset) < size.
CREATE TABLE bid (auction BIGINT, price BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '4' SECOND)
WITH ('connector' = 'datagen', 'number-of-rows' = '100');
CREATE TABLE o (ws TIMESTAMP(3), we TIMESTAMP(3), n BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT window_start, window_end, COUNT(*) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '90' SECOND)) GROUP BY window_start, window_end;
