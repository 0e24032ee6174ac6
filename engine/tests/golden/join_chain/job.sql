-- compare: materialized
-- A chain of joins. `bids AS b, auctions AS a LEFT JOIN (...) AS s ON ...` is, as JOIN binds
-- tighter than the comma, bids inner-joined (the condition in WHERE) with the LEFT JOIN of
-- auctions and a subquery of sellers: an inner join over an updating input (the LEFT JOIN
-- retracts its padded rows). WHERE conditions on one input move below the joins, one on the
-- padded side of a LEFT JOIN stays above it (only rows without a seller pass), and a SELECT
-- list with two columns named `id` goes into a sink. The final tables do not depend on how
-- the three sources interleave; the changelog does.
CREATE TABLE bids (id BIGINT, auction BIGINT, price INT) WITH (
  'connector' = 'filesystem', 'path' = '${INPUT_DIR}/bids.json', 'format' = 'json');
CREATE TABLE auctions (id BIGINT, seller BIGINT, category INT) WITH (
  'connector' = 'filesystem', 'path' = '${INPUT_DIR}/auctions.json', 'format' = 'json');
CREATE TABLE sellers (id BIGINT, name STRING, state STRING) WITH (
  'connector' = 'filesystem', 'path' = '${INPUT_DIR}/sellers.json', 'format' = 'json');

CREATE TABLE all_bids (bid BIGINT, auction BIGINT, price INT, seller STRING, state STRING)
WITH ('connector' = 'print', 'print-identifier' = 'all_bids');
CREATE TABLE orphans (bid BIGINT, auction BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'orphans');

CREATE VIEW enriched AS
SELECT b.id AS bid, a.id AS aid, b.price, s.name, s.state
FROM bids AS b, auctions AS a
LEFT JOIN (SELECT id, UPPER(name) AS name, state FROM sellers WHERE state <> 'XX') AS s ON a.seller = s.id
WHERE b.auction = a.id AND a.category = 1 AND b.price > 10;

EXECUTE STATEMENT SET BEGIN
INSERT INTO all_bids SELECT * FROM enriched;
INSERT INTO orphans SELECT b.id, a.id FROM bids AS b JOIN auctions AS a ON b.auction = a.id
  LEFT JOIN sellers AS s ON s.id = a.seller
  WHERE s.name IS NULL;
END;
