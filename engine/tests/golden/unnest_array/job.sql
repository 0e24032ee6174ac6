-- compare: changelog
-- UNNEST of ARRAY columns read from json: CROSS JOIN UNNEST WITH ORDINALITY (one row per
-- element, none for an empty or NULL array, NULL elements kept), the comma form with a WHERE
-- on the elements plus CARDINALITY and 1-based element access, a GROUP BY over the unnested
-- elements (an updating result), and UNNEST of an updating input (the last order per customer,
-- a deduplication that keeps the array in its state): each element row carries its input
-- row's kind. Also a GROUP BY on an ARRAY key (hashed to its key group by value). Inserts
-- and per-key updates have one order in Flink at p=1, so the changelog is compared.
CREATE TABLE orders (
  id BIGINT,
  customer STRING,
  tags ARRAY<STRING>,
  qtys ARRAY<INT>,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/orders.json',
  'format' = 'json'
);

CREATE TABLE elements (id BIGINT, tags ARRAY<STRING>, tag STRING, pos INT, ts TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'elements');

CREATE TABLE quantities (id BIGINT, n INT, first_tag STRING, q INT)
WITH ('connector' = 'print', 'print-identifier' = 'quantities');

CREATE TABLE tag_counts (tag STRING, orders BIGINT, customers BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'tag_counts');

CREATE TABLE by_tags (tags ARRAY<STRING>, orders BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'by_tags');

CREATE TABLE latest_tags (customer STRING, id BIGINT, tag STRING)
WITH ('connector' = 'print', 'print-identifier' = 'latest_tags');

INSERT INTO elements
SELECT id, tags, tag, pos, ts FROM orders CROSS JOIN UNNEST(tags) WITH ORDINALITY AS t(tag, pos);

INSERT INTO quantities
SELECT id, CARDINALITY(qtys), tags[1], q FROM orders, UNNEST(qtys) AS u(q) WHERE q > 1;

INSERT INTO tag_counts
SELECT tag, COUNT(*), COUNT(DISTINCT customer) FROM orders CROSS JOIN UNNEST(tags) AS t(tag) GROUP BY tag;

INSERT INTO latest_tags
SELECT customer, id, tag
FROM (
  SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY customer ORDER BY ts DESC) AS rn FROM orders
  ) WHERE rn = 1
) CROSS JOIN UNNEST(tags) AS t(tag);

INSERT INTO by_tags SELECT tags, COUNT(*) FROM orders GROUP BY tags;
