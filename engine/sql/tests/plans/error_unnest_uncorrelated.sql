-- UNNEST alone in FROM (of a constant array) is not supported.
CREATE TABLE out (x INT) WITH ('connector' = 'print');

INSERT INTO out SELECT x FROM UNNEST(ARRAY[1, 2]) AS t(x);
