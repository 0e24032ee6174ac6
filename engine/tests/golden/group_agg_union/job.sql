-- compare: materialized
-- UNION ALL of an updating and an append-only input, aggregated again. The
-- order in which Flink interleaves the two inputs is not deterministic, so the
-- materialized table is compared.
CREATE TABLE clicks (
  usr STRING,
  page STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/clicks.json',
  'format' = 'json'
);

CREATE TABLE extra (
  usr STRING,
  page STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/extra.json',
  'format' = 'json'
);

CREATE TABLE scores (
  usr STRING,
  score BIGINT,
  parts BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'scores');

INSERT INTO scores
SELECT usr, SUM(n), COUNT(*)
FROM (
  SELECT usr, COUNT(*) AS n FROM clicks GROUP BY usr
  UNION ALL
  SELECT usr, CAST(100 AS BIGINT) AS n FROM extra
)
GROUP BY usr;
