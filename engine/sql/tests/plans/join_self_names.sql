-- A self-join in a view: the SELECT list names its repeated column `v0`, as Calcite does, and
-- the view's users read it by that name.
CREATE TABLE s (k INT, v INT) WITH ('connector' = 'datagen');
CREATE TABLE out (k INT, v INT, w INT) WITH ('connector' = 'print');

CREATE VIEW pairs AS SELECT a.k, a.v, b.v FROM s AS a JOIN s AS b ON a.k = b.v;

INSERT INTO out SELECT k, v, v0 FROM pairs WHERE v0 > 0;
