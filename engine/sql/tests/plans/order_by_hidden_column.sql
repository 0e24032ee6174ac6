-- ORDER BY a column of the FROM that the SELECT list leaves out: planned with it as a
-- hidden column, sorted (a temporal sort on the time attribute), then dropped, as Calcite
-- does; keys that are output columns stay as they are.
CREATE TABLE bid (auction BIGINT, price BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '4' SECOND)
WITH ('connector' = 'datagen', 'number-of-rows' = '100');
CREATE TABLE o (auction BIGINT, p BIGINT) WITH ('connector' = 'print');
INSERT INTO o SELECT auction, price * 2 AS p FROM bid WHERE price > 10 ORDER BY ts, p DESC;
