-- Window offsets, the TVFs' optional last argument: windows start at the offset plus a
-- multiple of the size (of the slide for HOP), negative offsets too.
CREATE TABLE bid (auction BIGINT, price BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '4' SECOND)
WITH ('connector' = 'datagen', 'number-of-rows' = '100');
CREATE TABLE o (ws TIMESTAMP(3), we TIMESTAMP(3), n BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT window_start, window_end, COUNT(*) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '1' HOUR, INTERVAL '15' MINUTE)) GROUP BY window_start, window_end;
INSERT INTO o SELECT window_start, window_end, COUNT(*) FROM TABLE(HOP(TABLE bid, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '5' MINUTE, INTERVAL '-10' SECOND)) GROUP BY window_start, window_end;
INSERT INTO o SELECT window_start, window_end, COUNT(*) FROM TABLE(CUMULATE(TABLE bid, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '1' DAY, INTERVAL '-8' HOUR)) GROUP BY window_start, window_end;
