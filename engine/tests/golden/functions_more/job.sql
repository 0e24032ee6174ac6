-- compare: materialized
-- Flink built-in scalar functions by family, each on NULLs and edge cases:
-- TIMESTAMPDIFF/TIMESTAMPADD (month ends, leap days, negative spans), UNIX_TIMESTAMP,
-- DAYOFWEEK, CONVERT_TZ, LOCALTIMESTAMP; LOCATE, REGEXP*, SPLIT, STR_TO_MAP, IS_*,
-- ELT, URL_*, PARSE_URL, base64, BIN, HEX, STARTSWITH/ENDSWITH; hashes; TRUNCATE,
-- SIGN, E; ELEMENT, ARRAY_*, MAP_KEYS/MAP_VALUES; JSON_VALUE/JSON_QUERY/JSON_EXISTS.
CREATE TABLE events (
  id INT,
  s STRING,
  s2 STRING,
  n BIGINT,
  d DOUBLE,
  `dec` DECIMAL(10, 3),
  ts1 TIMESTAMP(3),
  ts2 TIMESTAMP(3),
  arr ARRAY<INT>,
  sarr ARRAY<STRING>,
  m MAP<STRING, INT>,
  js STRING,
  url STRING,
  kv STRING,
  tz STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/events.json',
  'format' = 'json'
);

CREATE TABLE datetime_out (
  id INT, d_sec INT, d_min INT, d_hour INT, d_day INT, d_week INT, d_month INT, d_quarter INT,
  d_year INT, add_sec TIMESTAMP(3), add_day TIMESTAMP(3), add_month TIMESTAMP(3),
  add_year TIMESTAMP(3), sub_month TIMESTAMP(3), ux BIGINT, ux_fmt BIGINT, ux_bad BIGINT,
  ux_now BOOLEAN, dow BIGINT, ctz STRING, ctz_back STRING, ctz_bad STRING, local_now INT
) WITH ('connector' = 'print', 'print-identifier' = 'datetime_out');

CREATE TABLE string_out (
  id INT, loc INT, loc_from INT, loc_empty INT, rx BOOLEAN, rx_anchored BOOLEAN, rsub STRING,
  rall ARRAY<STRING>, rall0 ARRAY<STRING>, rcount INT, rinstr INT, sp ARRAY<STRING>,
  sp_chars ARRAY<STRING>, stm_b STRING, stm_c STRING, stm_n INT, stm_semi STRING, dig BOOLEAN,
  alpha BOOLEAN, isdec BOOLEAN, isdec2 BOOLEAN, elt STRING, elt_out STRING, sw BOOLEAN,
  ew BOOLEAN
) WITH ('connector' = 'print', 'print-identifier' = 'string_out');

CREATE TABLE encode_out (
  id INT, ue STRING, ud STRING, ph STRING, pp STRING, pq STRING, pqk STRING, pqk_missing STRING,
  pr STRING, pproto STRING, pfile STRING, pauth STRING, puser STRING, b64 STRING,
  unb64 STRING, bin STRING, hex_n STRING, hex_s STRING
) WITH ('connector' = 'print', 'print-identifier' = 'encode_out');

CREATE TABLE hash_out (
  id INT, md5 STRING, sha1 STRING, sha224 STRING, sha256 STRING, sha384 STRING, sha512 STRING,
  sha2_256 STRING, sha2_512 STRING
) WITH ('connector' = 'print', 'print-identifier' = 'hash_out');

CREATE TABLE math_out (
  id INT, tr_d DOUBLE, tr_d2 DOUBLE, tr_dec DECIMAL(10, 3), tr_dec1 DECIMAL(10, 3),
  tr_n BIGINT, tr_n_neg BIGINT, sign_d DOUBLE, sign_n BIGINT, sign_dec DECIMAL(10, 3), e DOUBLE
) WITH ('connector' = 'print', 'print-identifier' = 'math_out');

CREATE TABLE array_out (
  id INT, el INT, app ARRAY<INT>, pre ARRAY<INT>, has BOOLEAN, has_null BOOLEAN,
  dist ARRAY<INT>, pos INT, pos_missing INT, rem ARRAY<INT>, rem_null ARRAY<INT>,
  rev ARRAY<INT>, sl ARRAY<INT>, sl_neg ARRAY<INT>, sl_open ARRAY<INT>, sl_empty ARRAY<INT>,
  so ARRAY<INT>, so_desc ARRAY<INT>, so_nulls_last ARRAY<INT>, un ARRAY<INT>,
  cat ARRAY<INT>, amax INT, amin INT, aj STRING, aj_null STRING, mk ARRAY<STRING>,
  mv ARRAY<INT>
) WITH ('connector' = 'print', 'print-identifier' = 'array_out');

CREATE TABLE json_out (
  id INT, jv STRING, jv_num STRING, jv_int STRING, jv_bool STRING, jv_obj STRING,
  jv_missing STRING, jv_null STRING, jv_idx STRING, jq STRING, jq_arr STRING,
  jq_scalar STRING, jq_empty STRING, je BOOLEAN, je_missing BOOLEAN, je_idx BOOLEAN
) WITH ('connector' = 'print', 'print-identifier' = 'json_out');

INSERT INTO datetime_out
SELECT
  id,
  TIMESTAMPDIFF(SECOND, ts1, ts2),
  TIMESTAMPDIFF(MINUTE, ts1, ts2),
  TIMESTAMPDIFF(HOUR, ts1, ts2),
  TIMESTAMPDIFF(DAY, ts1, ts2),
  TIMESTAMPDIFF(WEEK, ts1, ts2),
  TIMESTAMPDIFF(MONTH, ts1, ts2),
  TIMESTAMPDIFF(QUARTER, ts1, ts2),
  TIMESTAMPDIFF(YEAR, ts1, ts2),
  TIMESTAMPADD(SECOND, CAST(n AS INT), ts1),
  TIMESTAMPADD(DAY, CAST(n AS INT), ts1),
  TIMESTAMPADD(MONTH, 1, ts1),
  TIMESTAMPADD(YEAR, 1, ts1),
  TIMESTAMPADD(MONTH, -1, ts2),
  UNIX_TIMESTAMP(CAST(ts1 AS STRING)),
  UNIX_TIMESTAMP(DATE_FORMAT(ts2, 'dd/MM/yyyy HH:mm'), 'dd/MM/yyyy HH:mm'),
  UNIX_TIMESTAMP(s),
  UNIX_TIMESTAMP() > 1700000000,
  DAYOFWEEK(ts1),
  CONVERT_TZ(DATE_FORMAT(ts1, 'yyyy-MM-dd HH:mm:ss'), 'UTC', tz),
  CONVERT_TZ(CONVERT_TZ(DATE_FORMAT(ts2, 'yyyy-MM-dd HH:mm:ss'), 'UTC', tz), tz, 'UTC'),
  CONVERT_TZ(s, 'UTC', 'Asia/Tokyo'),
  TIMESTAMPDIFF(DAY, LOCALTIMESTAMP, LOCALTIMESTAMP)
FROM events;

INSERT INTO string_out
SELECT
  id,
  LOCATE(s2, s),
  LOCATE(s2, s, 6),
  LOCATE('', s),
  REGEXP(s, '[0-9]+'),
  REGEXP(s, '^o'),
  REGEXP_SUBSTR(s, '[a-z]+'),
  REGEXP_EXTRACT_ALL(s, '([a-z])([a-z]*)'),
  REGEXP_EXTRACT_ALL(s, '([a-z])([a-z]*)', 0),
  REGEXP_COUNT(s, 'o'),
  REGEXP_INSTR(s, 'o'),
  SPLIT(s, ' '),
  SPLIT(s2, ''),
  STR_TO_MAP(kv)['b'],
  STR_TO_MAP(kv)['c'],
  CARDINALITY(STR_TO_MAP(kv)),
  STR_TO_MAP(kv, ';', '=')['x'],
  IS_DIGIT(s),
  IS_ALPHA(s),
  IS_DECIMAL(s2),
  IS_DECIMAL(s),
  ELT(2, s, s2, 'third'),
  ELT(CAST(n AS INT), 'a', 'b'),
  STARTSWITH(s, 'he'),
  ENDSWITH(s, s2)
FROM events;

INSERT INTO encode_out
SELECT
  id,
  URL_ENCODE(s),
  URL_DECODE(url),
  PARSE_URL(url, 'HOST'),
  PARSE_URL(url, 'PATH'),
  PARSE_URL(url, 'QUERY'),
  PARSE_URL(url, 'QUERY', 'k2'),
  PARSE_URL(url, 'QUERY', 'nope'),
  PARSE_URL(url, 'REF'),
  PARSE_URL(url, 'PROTOCOL'),
  PARSE_URL(url, 'FILE'),
  PARSE_URL(url, 'AUTHORITY'),
  PARSE_URL(url, 'USERINFO'),
  TO_BASE64(s),
  FROM_BASE64(TO_BASE64(s)),
  BIN(n),
  HEX(n),
  HEX(s)
FROM events;

INSERT INTO hash_out
SELECT id, MD5(s), SHA1(s), SHA224(s), SHA256(s), SHA384(s), SHA512(s), SHA2(s, 256), SHA2(s, 512)
FROM events;

INSERT INTO math_out
SELECT
  id,
  TRUNCATE(d),
  TRUNCATE(d, 2),
  TRUNCATE(`dec`),
  TRUNCATE(`dec`, 1),
  TRUNCATE(n * 123, -2),
  TRUNCATE(-n * 123, -1),
  SIGN(d),
  SIGN(n),
  SIGN(`dec`),
  E()
FROM events;

INSERT INTO array_out
SELECT
  id,
  ELEMENT(ARRAY_SLICE(arr, 1, 1)),
  ARRAY_APPEND(arr, CAST(n AS INT)),
  ARRAY_PREPEND(arr, 0),
  ARRAY_CONTAINS(arr, 3),
  ARRAY_CONTAINS(arr, CAST(NULL AS INT)),
  ARRAY_DISTINCT(arr),
  ARRAY_POSITION(arr, 2),
  ARRAY_POSITION(arr, 42),
  ARRAY_REMOVE(arr, 3),
  ARRAY_REMOVE(arr, CAST(NULL AS INT)),
  ARRAY_REVERSE(arr),
  ARRAY_SLICE(arr, 2, 3),
  ARRAY_SLICE(arr, -2, -1),
  ARRAY_SLICE(arr, 0),
  ARRAY_SLICE(arr, 4, 2),
  ARRAY_SORT(arr),
  ARRAY_SORT(arr, FALSE),
  ARRAY_SORT(arr, TRUE, FALSE),
  ARRAY_UNION(arr, ARRAY[1, 9]),
  ARRAY_CONCAT(arr, ARRAY[7], arr),
  ARRAY_MAX(arr),
  ARRAY_MIN(arr),
  ARRAY_JOIN(sarr, '|'),
  ARRAY_JOIN(sarr, '|', '?'),
  MAP_KEYS(m),
  MAP_VALUES(m)
FROM events;

INSERT INTO json_out
SELECT
  id,
  JSON_VALUE(js, '$.a.b[2].c'),
  JSON_VALUE(js, '$.n'),
  JSON_VALUE(js, '$.i'),
  JSON_VALUE(js, '$.t'),
  JSON_VALUE(js, '$.a'),
  JSON_VALUE(js, '$.missing'),
  JSON_VALUE(js, '$.z'),
  JSON_VALUE(js, '$[1]'),
  JSON_QUERY(js, '$.a'),
  JSON_QUERY(js, '$.a.b'),
  JSON_QUERY(js, '$.s'),
  JSON_QUERY(js, '$.b'),
  JSON_EXISTS(js, '$.a.b'),
  JSON_EXISTS(js, '$.nope'),
  JSON_EXISTS(js, '$[2]')
FROM events;
