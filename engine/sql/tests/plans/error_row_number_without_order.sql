-- ROW_NUMBER() needs an ORDER BY.
CREATE TABLE orders (id BIGINT, cat STRING, price INT) WITH ('connector' = 'datagen');
CREATE TABLE out (id BIGINT, cat STRING, price INT, rn BIGINT) WITH ('connector' = 'print');

INSERT INTO out
SELECT * FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY cat) AS rn FROM orders
) WHERE rn <= 3;
