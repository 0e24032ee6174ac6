-- compare: materialized
-- The added functions in a session time zone with DST (Europe/Paris) and their harder
-- inputs: TIMESTAMPDIFF/TIMESTAMPADD count the months of a TIMESTAMP_LTZ in UTC while
-- DAYOFWEEK reads it in the session zone; UNIX_TIMESTAMP and CONVERT_TZ of a time in the
-- DST gap; JSON paths with wildcards, escapes and sorted keys; arrays with NULLs.
SET 'table.local-time-zone' = 'Europe/Paris';
CREATE TABLE e (
  id INT, a BIGINT, b BIGINT, s STRING, js STRING, arr ARRAY<INT>, sarr ARRAY<STRING>)
WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/events.json', 'format' = 'json');
CREATE TABLE ltz_out (id INT, dow BIGINT, dmon INT, dhour INT, dday INT, addm TIMESTAMP_LTZ(3), addh TIMESTAMP_LTZ(3), addd TIMESTAMP_LTZ(3), ux BIGINT, ux2 BIGINT,
  jv1 STRING, jq1 STRING, je1 BOOLEAN, jv2 STRING, jv3 STRING, jq3 STRING, jv4 STRING, jv5 STRING, jq6 STRING, jv7 STRING,
  so ARRAY<STRING>, di ARRAY<STRING>, pn INT, cn BOOLEAN, rem ARRAY<STRING>, stm STRING, stmc INT, b64 STRING, ud STRING, el INT, ctz STRING, dowts BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'ltz_out');
INSERT INTO ltz_out SELECT id,
  DAYOFWEEK(TO_TIMESTAMP_LTZ(b, 3)),
  TIMESTAMPDIFF(MONTH, TO_TIMESTAMP_LTZ(a, 3), TO_TIMESTAMP_LTZ(b, 3)),
  TIMESTAMPDIFF(HOUR, TO_TIMESTAMP_LTZ(a, 3), TO_TIMESTAMP_LTZ(b, 3)),
  TIMESTAMPDIFF(DAY, TO_TIMESTAMP_LTZ(a, 3), TO_TIMESTAMP_LTZ(b, 3)),
  TIMESTAMPADD(MONTH, 1, TO_TIMESTAMP_LTZ(a, 3)),
  TIMESTAMPADD(HOUR, 1, TO_TIMESTAMP_LTZ(a, 3)),
  TIMESTAMPADD(DAY, 1, TO_TIMESTAMP_LTZ(a, 3)),
  UNIX_TIMESTAMP('1970-01-01 01:00:00'),
  UNIX_TIMESTAMP('2024-03-31 02:30:00'),
  JSON_VALUE(js, '$.a[*].k'),
  JSON_QUERY(js, '$.a[*]'),
  JSON_EXISTS(js, '$.a[*].k'),
  JSON_VALUE(js, '$.u'),
  JSON_VALUE(js, 'strict $.missing'),
  JSON_QUERY(js, '$.n'),
  JSON_VALUE(js, '$.e'),
  JSON_VALUE(js, 'lax $.k'),
  JSON_QUERY(js, '$'),
  JSON_VALUE(js, '$.a[1].k'),
  ARRAY_SORT(sarr),
  ARRAY_DISTINCT(sarr),
  ARRAY_POSITION(arr, CAST(NULL AS INT)),
  ARRAY_CONTAINS(arr, CAST(NULL AS INT)),
  ARRAY_REMOVE(sarr, 'b'),
  STR_TO_MAP('a=1,b=2,a=3')['a'],
  CARDINALITY(STR_TO_MAP('a=1,b=2,a=3,')),
  FROM_BASE64(TO_BASE64(s)),
  URL_DECODE('%zz'),
  ELEMENT(ARRAY_DISTINCT(ARRAY_REMOVE(arr, CAST(NULL AS INT)))),
  CONVERT_TZ('2024-03-31 02:30:00', 'Europe/Paris', 'UTC'),
  DAYOFWEEK(TIMESTAMP '2024-03-31 23:30:00')
FROM e;
