-- Views on views: filter + computed columns, then classification, then a window aggregate;
-- the rowtime attribute passes through the views.
CREATE TABLE requests (
  req_id BIGINT,
  `method` STRING,
  path STRING,
  status INT,
  latency_ms INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/requests.json',
  'format' = 'json'
);

CREATE VIEW api_requests AS
SELECT req_id, UPPER(`method`) AS http_method,
       REGEXP_EXTRACT(path, '^/api/([a-z]+)', 1) AS resource,
       status, latency_ms, ts
FROM requests
WHERE path LIKE '/api/%';

CREATE VIEW classified AS
SELECT req_id, http_method, resource, status, latency_ms, ts,
       CASE WHEN status >= 500 THEN 'error' WHEN status >= 400 THEN 'client_error' ELSE 'ok' END AS outcome,
       latency_ms > 1000 AS slow
FROM api_requests
WHERE http_method IN ('GET', 'POST');

CREATE VIEW per_window AS
SELECT window_start, window_end, resource, outcome,
       COUNT(*) AS requests, AVG(latency_ms) AS avg_latency, MAX(latency_ms) AS max_latency,
       COUNT(DISTINCT http_method) AS methods
FROM TABLE(TUMBLE(TABLE classified, DESCRIPTOR(ts), INTERVAL '15' SECOND))
GROUP BY window_start, window_end, resource, outcome;

CREATE TABLE classified_out (
  req_id BIGINT,
  http_method STRING,
  resource STRING,
  outcome STRING,
  slow BOOLEAN,
  ts TIMESTAMP(3)
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/classified_out',
  'format' = 'json'
);

CREATE TABLE window_out (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  resource STRING,
  outcome STRING,
  requests BIGINT,
  avg_latency INT,
  max_latency INT,
  methods BIGINT,
  day_str STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/window_out',
  'format' = 'json'
);

INSERT INTO classified_out SELECT req_id, http_method, resource, outcome, slow, ts FROM classified;

INSERT INTO window_out
SELECT window_start, window_end, resource, outcome, requests, avg_latency, max_latency, methods,
       DATE_FORMAT(window_start, 'yyyy-MM-dd') AS day_str
FROM per_window
WHERE requests > 0;
