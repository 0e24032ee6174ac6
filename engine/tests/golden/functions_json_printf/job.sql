-- compare: materialized
-- FROM_UNIXTIME, JSON_VALUE ... RETURNING, JSON_OBJECT / JSON_ARRAY (NULL and ABSENT ON NULL,
-- nesting, sorted keys), JSON_STRING of each type and PRINTF's conversions, in a session
-- time zone (Asia/Kolkata). A DOUBLE in JSON prints as Java's BigDecimal.valueOf does.
SET 'table.local-time-zone' = 'Asia/Kolkata';
CREATE TABLE e (id INT, i INT, b BIGINT, d DOUBLE, big DOUBLE, `dec` DECIMAL(10, 2), s STRING, ts TIMESTAMP(3), arr ARRAY<INT>, m MAP<STRING, INT>, t BOOLEAN, js STRING)
WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/events.json', 'format' = 'json');
CREATE TABLE json_build_out (id INT, fu STRING, fu2 STRING, rv_int INT, rv_dbl DOUBLE, rv_bool BOOLEAN, rv_bad INT,
  jo1 STRING, jo2 STRING, jo3 STRING, jo4 STRING, ja1 STRING, ja2 STRING, ja3 STRING, js1 STRING, js2 STRING, js3 STRING, js4 STRING, js5 STRING, js6 STRING,
  p1 STRING, p2 STRING, p3 STRING, p4 STRING)
WITH ('connector' = 'print', 'print-identifier' = 'json_build_out');
INSERT INTO json_build_out SELECT id,
  FROM_UNIXTIME(b),
  FROM_UNIXTIME(b, 'yyyy/MM/dd HH:mm'),
  JSON_VALUE(js, '$.a' RETURNING INT),
  JSON_VALUE(js, '$.f' RETURNING DOUBLE),
  JSON_VALUE(js, '$.t' RETURNING BOOLEAN),
  JSON_VALUE(js, '$.x' RETURNING INT),
  JSON_OBJECT('b' VALUE i, 'a' VALUE s),
  JSON_OBJECT('n' VALUE i NULL ON NULL),
  JSON_OBJECT('n' VALUE i ABSENT ON NULL),
  JSON_OBJECT('o' VALUE JSON_OBJECT('x' VALUE d), 'arr' VALUE JSON_ARRAY(i, t), 'dec' VALUE `dec`, 'big' VALUE big),
  JSON_ARRAY(i, s, t),
  JSON_ARRAY(i NULL ON NULL),
  JSON_ARRAY(JSON_ARRAY(1, 2), d),
  JSON_STRING(i),
  JSON_STRING(s),
  JSON_STRING(d),
  JSON_STRING(arr),
  JSON_STRING(ts),
  JSON_STRING(m),
  PRINTF('%s|%d|%5.2f|%x', s, i, d, i),
  PRINTF('%-4s|%04d|%b|%%', CAST(i AS STRING), i, t),
  PRINTF('%s %s', s, ts),
  PRINTF('%.3f %e', big, big)
FROM e;
