-- compare: changelog
-- VALUES rows: inserted directly (strings of different lengths, a NULL, an expression, a
-- timestamp literal) and aggregated from a derived table with column aliases (an updating
-- result). A VALUES relation is emitted by one subtask in its written order, so the
-- changelog is compared.
CREATE TABLE direct (id BIGINT, name STRING, score DOUBLE, at_time TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'direct');

CREATE TABLE counts (name STRING, n BIGINT, total BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'counts');

EXECUTE STATEMENT SET BEGIN
INSERT INTO direct VALUES
  (1, 'a', 1.5, TIMESTAMP '2024-01-01 00:00:00'),
  (2, 'bc', 2 * 3.25, TIMESTAMP '2024-01-01 10:30:00.250'),
  (3, CAST(NULL AS STRING), -1, CAST('2024-02-29 23:59:59' AS TIMESTAMP(3)));
INSERT INTO counts
SELECT name, COUNT(*), SUM(v) FROM (VALUES (1, 'x', 10), (2, 'y', 20), (3, 'x', 30), (4, 'x', 5)) AS t(id, name, v)
GROUP BY name;
END;
