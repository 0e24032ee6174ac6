-- compare: changelog
-- With a state TTL, Flink's GroupAggFunction emits an update even when a key's
-- results did not change, so that downstream state is refreshed. (The TTL is
-- long enough that nothing expires during the run; expiry itself is tested in
-- the operator's unit tests with a fixed clock.)
SET 'table.exec.state.ttl' = '1 h';

CREATE TABLE orders (
  id BIGINT,
  shop STRING,
  usr STRING,
  qty INT,
  price DOUBLE,
  amount DECIMAL(10, 2)
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE first_ids (
  shop STRING,
  first_id BIGINT,
  most BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'first_ids');

INSERT INTO first_ids SELECT shop, MIN(id), MAX(qty) FROM orders GROUP BY shop;
