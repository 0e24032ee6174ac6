-- compare: materialized
-- VALUES as a small dimension table joined with a stream (a regular join). When the VALUES
-- rows arrive relative to the stream's is up to the sources, so the final table is compared.
CREATE TABLE orders (
  id BIGINT,
  region STRING,
  amount BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE labelled (id BIGINT, label STRING, amount BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'labelled');

INSERT INTO labelled
SELECT o.id, r.label, o.amount
FROM orders AS o JOIN (VALUES ('east', 'East Coast'), ('west', 'West Coast')) AS r(code, label)
  ON o.region = r.code;
