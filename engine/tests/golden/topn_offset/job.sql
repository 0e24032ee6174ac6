-- compare: changelog
-- Top-N ranges that do not start at 1 (rn BETWEEN 2 AND 3, rn = 2, rn > 1 AND rn < 4):
-- Flink ranks with row numbers even when they are not in the output. NULL sort keys
-- rank last descending and first ascending (Flink's default: NULL is the smallest value).
CREATE TABLE scores (
  id INT,
  grp STRING,
  score INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/scores.json',
  'format' = 'json'
);

CREATE TABLE second_third (
  grp STRING,
  rn BIGINT,
  id INT,
  score INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'second_third'
);

CREATE TABLE second_best (
  grp STRING,
  id INT,
  score INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'second_best'
);

CREATE TABLE lowest (
  grp STRING,
  id INT,
  score INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'lowest'
);

INSERT INTO second_third
SELECT grp, rn, id, score FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY score DESC) AS rn FROM scores
) WHERE rn BETWEEN 2 AND 3;

INSERT INTO second_best
SELECT grp, id, score FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY score DESC) AS rn FROM scores
) WHERE rn = 2;

INSERT INTO lowest
SELECT grp, id, score FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY score ASC) AS rn FROM scores
) WHERE rn > 1 AND rn < 4;
