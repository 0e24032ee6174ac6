-- compare: materialized
-- ARRAY_EXCEPT / ARRAY_INTERSECT (distinct, in the first array's order, NULL equal to NULL),
-- MAP_FROM_ARRAYS (a repeated key's last value wins) and MAP_UNION (a later map wins),
-- with NULL and empty inputs. Flink 2.3 fails on map[key] or CARDINALITY of these two
-- maps' results, so the maps are printed whole.
CREATE TABLE e (id INT, a ARRAY<INT>, b ARRAY<INT>, k ARRAY<STRING>, v ARRAY<INT>, m1 MAP<STRING, INT>, m2 MAP<STRING, INT>)
WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/events.json', 'format' = 'json');
CREATE TABLE collection_out (id INT, ex ARRAY<INT>, ex2 ARRAY<INT>, inter ARRAY<INT>, inter2 ARRAY<INT>,
  mfa MAP<STRING, INT>, mu MAP<STRING, INT>, mu3 MAP<STRING, INT>)
WITH ('connector' = 'print', 'print-identifier' = 'collection_out');
INSERT INTO collection_out SELECT id,
  ARRAY_EXCEPT(a, b),
  ARRAY_EXCEPT(b, a),
  ARRAY_INTERSECT(a, b),
  ARRAY_INTERSECT(b, a),
  MAP_FROM_ARRAYS(k, v),
  MAP_UNION(m1, m2),
  MAP_UNION(m1, m2, MAP['new', 1])
FROM e;
