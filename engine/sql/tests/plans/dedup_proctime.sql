CREATE TABLE clicks (user_id STRING, page STRING, pt AS PROCTIME())
WITH ('connector' = 'filesystem', 'path' = '/data/clicks.json', 'format' = 'json');

CREATE TABLE out (user_id STRING, page STRING) WITH ('connector' = 'print');

INSERT INTO out
SELECT user_id, page FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY pt) AS rn FROM clicks
) WHERE rn = 1;
