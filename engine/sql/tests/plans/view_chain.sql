-- Views on views, then a window aggregate over the last one; the time attribute passes
-- through the views (engine/tests/golden/view_chain).
CREATE TABLE requests (
  req_id BIGINT,
  `method` STRING,
  path STRING,
  status INT,
  latency_ms INT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'filesystem', 'path' = '/data/requests.json', 'format' = 'json');

CREATE VIEW api_requests AS
SELECT req_id, UPPER(`method`) AS http_method,
       REGEXP_EXTRACT(path, '^/api/([a-z]+)', 1) AS resource,
       status, latency_ms, ts
FROM requests
WHERE path LIKE '/api/%';

CREATE VIEW classified AS
SELECT req_id, http_method, resource, latency_ms, ts,
       CASE WHEN status >= 500 THEN 'error' WHEN status >= 400 THEN 'client_error' ELSE 'ok' END AS outcome
FROM api_requests
WHERE http_method IN ('GET', 'POST');

CREATE TABLE window_out (
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  resource STRING,
  outcome STRING,
  requests BIGINT,
  avg_latency INT,
  day_str STRING
) WITH ('connector' = 'print');

INSERT INTO window_out
SELECT window_start, window_end, resource, outcome, requests, avg_latency,
       DATE_FORMAT(window_start, 'yyyy-MM-dd') AS day_str
FROM (
  SELECT window_start, window_end, resource, outcome,
         COUNT(*) AS requests, AVG(latency_ms) AS avg_latency
  FROM TABLE(TUMBLE(TABLE classified, DESCRIPTOR(ts), INTERVAL '15' SECOND))
  GROUP BY window_start, window_end, resource, outcome
)
WHERE requests > 0;
