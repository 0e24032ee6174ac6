-- compare: changelog
-- Top-N with ties on the sort key (a later row with an equal key ranks after the earlier
-- ones) and rows that push several others out at once; with rn, without rn, and Top-1.
CREATE TABLE scores (
  player STRING,
  team STRING,
  score INT,
  ts TIMESTAMP(3)
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/scores.json',
  'format' = 'json'
);

CREATE TABLE ranked (
  team STRING,
  rn BIGINT,
  player STRING,
  score INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'ranked'
);

CREATE TABLE unranked (
  team STRING,
  player STRING,
  score INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'unranked'
);

CREATE TABLE best (
  team STRING,
  player STRING,
  score INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'best'
);

INSERT INTO ranked
SELECT team, rn, player, score FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY team ORDER BY score DESC) AS rn FROM scores
) WHERE rn <= 3;

INSERT INTO unranked
SELECT team, player, score FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY team ORDER BY score DESC) AS rn FROM scores
) WHERE rn <= 3;

INSERT INTO best
SELECT team, player, score FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY team ORDER BY score DESC) AS rn FROM scores
) WHERE rn = 1;
