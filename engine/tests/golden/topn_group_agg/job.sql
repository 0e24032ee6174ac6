-- compare: materialized
-- Top-N and GROUP BY over each other: the two categories with the most orders and the
-- highest total (a Top-N over an updating non-windowed aggregation, whose changelog Flink
-- writes with other operators: compared materialized), and the number of orders per
-- category among its 3 most expensive (an aggregation over a Top-N).
CREATE TABLE orders (
  id BIGINT,
  cat STRING,
  price INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE busiest (
  rn BIGINT,
  cat STRING,
  n BIGINT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'busiest'
);

CREATE TABLE richest (
  cat STRING,
  total INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'richest'
);

CREATE TABLE top3_stats (
  cat STRING,
  n BIGINT,
  low INT
) WITH (
  'connector' = 'print',
  'print-identifier' = 'top3_stats'
);

INSERT INTO busiest
SELECT rn, cat, n FROM (
  SELECT *, ROW_NUMBER() OVER (ORDER BY n DESC, cat) AS rn
  FROM (SELECT cat, COUNT(*) AS n FROM orders GROUP BY cat)
) WHERE rn <= 2;

INSERT INTO richest
SELECT cat, total FROM (
  SELECT *, ROW_NUMBER() OVER (ORDER BY total DESC) AS rn
  FROM (SELECT cat, SUM(price) AS total FROM orders GROUP BY cat)
) WHERE rn <= 2;

INSERT INTO top3_stats
SELECT cat, COUNT(*) AS n, MIN(price) AS low FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY cat ORDER BY price DESC) AS rn FROM orders
) WHERE rn <= 3
GROUP BY cat;
