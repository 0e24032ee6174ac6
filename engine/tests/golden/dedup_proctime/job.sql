-- compare: changelog
-- Deduplication on processing time (a PROCTIME() attribute): the first row per user as it
-- arrives (append-only), and the last row per user (+I, then -U/+U for each later row).
-- One file is read by one subtask in order, so at parallelism 1 the changelog is compared.
-- The processing time itself is never written: it differs between runs.
CREATE TABLE clicks (
  user_id STRING,
  page STRING,
  seq BIGINT,
  pt AS PROCTIME()
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/clicks.json',
  'format' = 'json'
);

CREATE TABLE first_click (user_id STRING, page STRING, seq BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'first_click');

CREATE TABLE last_click (user_id STRING, page STRING, seq BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'last_click');

EXECUTE STATEMENT SET BEGIN
INSERT INTO first_click
SELECT user_id, page, seq FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY pt ASC) AS rn FROM clicks
) WHERE rn = 1;
INSERT INTO last_click
SELECT user_id, page, seq FROM (
  SELECT user_id, page, seq, pt, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY pt DESC) AS rn FROM clicks
) WHERE rn = 1;
END;
