-- A window TVF over an updating relation (a LEFT JOIN): Flink's window
-- operators do not consume update and delete changes.
CREATE TABLE a (k STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
CREATE TABLE b (k STRING, y INT) WITH ('connector' = 'datagen');
CREATE TABLE out (k STRING, c BIGINT) WITH ('connector' = 'print');

CREATE VIEW j AS SELECT a.k, a.ts, b.y FROM a LEFT JOIN b ON a.k = b.k;

INSERT INTO out
SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE j, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY k, window_start, window_end;
