-- compare: changelog
-- Aggregations over an updating input: a histogram of per-user click counts
-- (each count change retracts the user from its old bucket), MIN and MAX
-- that retract, and a global aggregation without GROUP BY. Flink's MAX over a
-- column that only increases (a running COUNT) ignores retractions, unless
-- the aggregation groups by a modified column (see sluice_sql::monotonicity).
CREATE TABLE clicks (
  usr STRING,
  page STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/clicks.json',
  'format' = 'json'
);

CREATE VIEW per_user AS
SELECT usr, COUNT(*) AS cnt, COUNT(DISTINCT page) AS pages, MAX(page) AS last_page FROM clicks GROUP BY usr;

CREATE TABLE histogram (
  cnt BIGINT,
  users BIGINT,
  max_pages BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'histogram');

CREATE TABLE extremes (
  busiest BIGINT,
  quietest BIGINT,
  users BIGINT,
  total BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'extremes');

CREATE TABLE pages (
  last_page STRING,
  most_pages BIGINT,
  fewest BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'pages');

INSERT INTO histogram SELECT cnt, COUNT(*), MAX(pages) FROM per_user GROUP BY cnt;

INSERT INTO pages SELECT MAX(last_page), MAX(pages), MIN(pages) FROM per_user;

INSERT INTO extremes SELECT MAX(cnt), MIN(cnt), COUNT(*), SUM(cnt) FROM per_user;
