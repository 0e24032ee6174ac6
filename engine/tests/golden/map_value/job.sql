-- compare: changelog
-- The MAP value constructor MAP[k1, v1, ...]: keys and values from columns and literals
-- (values coerced to one type, NULL values kept), a key written twice (its last value
-- kept), INT keys, an ARRAY value, access by key, CARDINALITY, a GROUP BY over a
-- constructed map's entries and CROSS JOIN UNNEST of a constructed map (entries in the
-- order written). Flink prints a MAP in java.util.HashMap order. Stateless except for the
-- GROUP BY, whose keys are printed in the order its one input gives them at p=1, so the
-- changelog is compared.
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

CREATE TABLE built (
  id BIGINT,
  m MAP<STRING, BIGINT>,
  twice MAP<STRING, INT>,
  by_id MAP<BIGINT, STRING>,
  tagged MAP<STRING, ARRAY<STRING>>,
  n INT,
  size_or_id BIGINT
) WITH ('connector' = 'print', 'print-identifier' = 'built');

CREATE TABLE pairs (id BIGINT, k STRING, v BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'pairs');

CREATE TABLE per_key (k STRING, total BIGINT, n BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'per_key');

CREATE VIEW entries AS
SELECT id, k, v
FROM events CROSS JOIN UNNEST(MAP[uid, id, 'size', CAST(attrs['size'] AS BIGINT), 'all', CAST(CARDINALITY(attrs) AS BIGINT)]) AS e(k, v);

EXECUTE STATEMENT SET BEGIN
INSERT INTO built
SELECT id,
  MAP['id', id, 'size', attrs['size'], 'seven', 7],
  MAP['x', 1, 'x', CAST(id AS INT)],
  MAP[id, uid, id + 10, tags[1]],
  MAP['tags', tags, 'none', CAST(NULL AS ARRAY<STRING>)],
  CARDINALITY(MAP[uid, 1, 'z', 2]),
  MAP['size', CAST(attrs['size'] AS BIGINT), 'id', id][COALESCE(tags[2], 'id')]
FROM events;
INSERT INTO pairs SELECT id, k, v FROM entries;
INSERT INTO per_key SELECT k, SUM(v), COUNT(*) FROM entries GROUP BY k;
END;
