-- Stateless filter and projection with scalar functions (bench/q_filter.sql).
CREATE TABLE src (
  id BIGINT,
  a INT,
  b DOUBLE,
  s STRING
) WITH (
  'connector' = 'datagen',
  'number-of-rows' = '1000'
);

CREATE TABLE sink (
  id BIGINT,
  a INT,
  b2 DOUBLE,
  s STRING,
  s_len INT
) WITH ('connector' = 'blackhole');

INSERT INTO sink
SELECT id, a, b * 2 AS b2, UPPER(s) AS s, CHAR_LENGTH(s) AS s_len
FROM src
WHERE a < 500 AND b > 0.25;
