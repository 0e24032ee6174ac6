-- compare: materialized
-- MAP and ARRAY columns: CROSS JOIN UNNEST of a MAP (key and value columns, NULL values
-- kept), LEFT JOIN UNNEST ... ON TRUE (a NULL-padded row for an empty or NULL array), a
-- GROUP BY over the unnested entries, map[key] and CARDINALITY, and a regular join that
-- carries the MAP and the ARRAY in its state and prints them (Flink prints a MAP in
-- java.util.HashMap order, and unnests it in the order of the internal hash map its json
-- format reads it into). The join's output order depends on how its two sources
-- interleave, so the final tables are compared.
CREATE TABLE events (
  id BIGINT,
  uid STRING,
  attrs MAP<STRING, INT>,
  tags ARRAY<STRING>
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/events.json',
  'format' = 'json'
);

CREATE TABLE users (uid STRING, name STRING) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/users.json',
  'format' = 'json'
);

CREATE TABLE entries (id BIGINT, k STRING, v INT)
WITH ('connector' = 'print', 'print-identifier' = 'entries');

CREATE TABLE padded (id BIGINT, tag STRING, pos INT)
WITH ('connector' = 'print', 'print-identifier' = 'padded');

CREATE TABLE key_sums (k STRING, total INT, n BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'key_sums');

CREATE TABLE lookups (id BIGINT, color INT, n INT, missing INT)
WITH ('connector' = 'print', 'print-identifier' = 'lookups');

CREATE TABLE joined (id BIGINT, name STRING, attrs MAP<STRING, INT>, tags ARRAY<STRING>)
WITH ('connector' = 'print', 'print-identifier' = 'joined');

INSERT INTO entries SELECT id, k, v FROM events CROSS JOIN UNNEST(attrs) AS t(k, v);

INSERT INTO padded SELECT id, tag, pos FROM events LEFT JOIN UNNEST(tags) WITH ORDINALITY AS t(tag, pos) ON TRUE;

INSERT INTO key_sums SELECT k, SUM(v), COUNT(*) FROM events CROSS JOIN UNNEST(attrs) AS t(k, v) GROUP BY k;

INSERT INTO lookups SELECT id, attrs['color'], CARDINALITY(attrs), attrs['nope'] FROM events;

INSERT INTO joined SELECT e.id, u.name, e.attrs, e.tags FROM events AS e JOIN users AS u ON e.uid = u.uid;
