-- compare: changelog
-- SELECT DISTINCT (an aggregation by every column, without aggregates), and a
-- DISTINCT over the updates of a GROUP BY, which deletes rows that stop being
-- distinct values.
CREATE TABLE clicks (
  usr STRING,
  page STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/clicks.json',
  'format' = 'json'
);

CREATE TABLE visits (
  usr STRING,
  page STRING
) WITH ('connector' = 'print', 'print-identifier' = 'visits');

CREATE TABLE counts (
  cnt BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'counts');

INSERT INTO visits SELECT DISTINCT usr, UPPER(page) FROM clicks WHERE page <> '/c';

INSERT INTO counts SELECT DISTINCT cnt FROM (SELECT usr, COUNT(*) AS cnt FROM clicks GROUP BY usr);
