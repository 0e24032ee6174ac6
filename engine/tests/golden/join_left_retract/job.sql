-- compare: materialized
-- LEFT and RIGHT joins whose matches can come after the outer row: a padded row
-- (+I[row, null]) is retracted (-D) when the first match arrives. Rows without any match
-- stay padded; a null key stays padded; a residual on the inner side only. The final tables
-- do not depend on how the two sources interleave (the changelog does), so they are compared.
CREATE TABLE clicks (
  click_id BIGINT,
  user_id STRING,
  page STRING,
  ts TIMESTAMP(3)
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/clicks.json',
  'format' = 'json'
);

CREATE TABLE users (
  user_id STRING,
  country STRING,
  age INT
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/users.json',
  'format' = 'json'
);

CREATE TABLE left_out (click_id BIGINT, user_id STRING, page STRING, country STRING, age INT)
WITH ('connector' = 'print', 'print-identifier' = 'left_out');

CREATE TABLE right_out (user_id STRING, country STRING, clicks_page STRING)
WITH ('connector' = 'print', 'print-identifier' = 'right_out');

INSERT INTO left_out
SELECT c.click_id, c.user_id, c.page, u.country, u.age
FROM clicks AS c LEFT JOIN users AS u ON c.user_id = u.user_id AND u.age >= 18;

INSERT INTO right_out
SELECT u.user_id, u.country, c.page
FROM clicks AS c RIGHT OUTER JOIN users AS u ON u.user_id = c.user_id AND c.page <> 'home';
