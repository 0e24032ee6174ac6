-- Conditions on one input move below a join where they keep their meaning: the ON condition
-- of the inner (never padded) side of a LEFT JOIN, WHERE conditions on its outer side and on
-- either side of an inner join; a WHERE on both inputs of an inner join joins its residual.
-- A WHERE on the padded side and an ON condition on the kept side stay where they are.
CREATE TABLE a (k STRING, x INT) WITH ('connector' = 'datagen');
CREATE TABLE b (k STRING, y INT) WITH ('connector' = 'datagen');
CREATE TABLE c (k STRING, z INT) WITH ('connector' = 'datagen');
CREATE TABLE out1 (k STRING, x INT, y INT) WITH ('connector' = 'print');
CREATE TABLE out2 (k STRING, x INT, z INT) WITH ('connector' = 'print');

EXECUTE STATEMENT SET BEGIN
INSERT INTO out1 SELECT a.k, x, y FROM a LEFT JOIN b ON a.k = b.k AND b.y > 0 AND a.x > 0
WHERE a.x < 100 AND b.y IS NULL;
INSERT INTO out2 SELECT a.k, x, z FROM a JOIN c ON a.k = c.k WHERE c.z > 5 AND a.x + c.z > 10 AND a.x < 7;
END;
