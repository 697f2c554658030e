-- trace_coverage: per (usage_date, endpoint_name), how many successful gateway requests have an
-- MLflow trace, and how many traces of that day have no gateway request. Column definitions:
-- docs/OUTPUTS.md#trace_coverage.
WITH successful AS (
  SELECT usage_date, endpoint_name, databricks_request_id
  FROM usage_costed
  WHERE request_time >= ${window_start} AND request_time < ${window_end}
    AND status_code BETWEEN 200 AND 299
),
-- Traces may start a little before or after their request: match over a day of slack.
traced_ids AS (
  SELECT client_request_id FROM traces
  WHERE request_time >= ${window_start} - INTERVAL '1' DAY AND request_time < ${window_end} + INTERVAL '1' DAY
    AND client_request_id IS NOT NULL
),
requests AS (
  SELECT usage_date, endpoint_name, COUNT(*) AS requests
  FROM successful
  GROUP BY usage_date, endpoint_name
),
-- A semi join (EXISTS): a request with several traces counts once, so the trace ids need no
-- de-duplicating first.
traced AS (
  SELECT s.usage_date, s.endpoint_name, COUNT(*) AS traced
  FROM successful s
  WHERE EXISTS (SELECT 1 FROM traced_ids t WHERE t.client_request_id = s.databricks_request_id)
  GROUP BY s.usage_date, s.endpoint_name
),
coverage AS (
  SELECT r.usage_date, r.endpoint_name, r.requests, COALESCE(t.traced, 0) AS traced
  FROM requests r
  LEFT JOIN traced t ON t.usage_date = r.usage_date AND t.endpoint_name = r.endpoint_name
),
gateway_ids AS (
  SELECT databricks_request_id FROM usage_costed
  WHERE request_time >= ${window_start} - INTERVAL '1' DAY AND request_time < ${window_end} + INTERVAL '1' DAY
    AND databricks_request_id IS NOT NULL
),
-- An anti join (NOT EXISTS, which, unlike NOT IN, keeps a trace without a client_request_id as
-- an orphan): the gateway's ids need no de-duplicating either.
orphans AS (
  SELECT t.usage_date, COALESCE(t.endpoint_named, '(none)') AS endpoint_name, COUNT(*) AS orphan_traces
  FROM traces_window t
  WHERE NOT EXISTS (SELECT 1 FROM gateway_ids g WHERE g.databricks_request_id = t.client_request_id)
  GROUP BY t.usage_date, COALESCE(t.endpoint_named, '(none)')
)
SELECT
  COALESCE(c.usage_date, o.usage_date) AS usage_date,
  COALESCE(c.endpoint_name, o.endpoint_name) AS endpoint_name,
  CAST(COALESCE(c.requests, 0) AS BIGINT) AS requests,
  CAST(COALESCE(c.traced, 0) AS BIGINT) AS traced,
  CASE WHEN c.requests > 0 THEN CAST(c.traced AS DOUBLE) / c.requests END AS coverage,
  CAST(COALESCE(o.orphan_traces, 0) AS BIGINT) AS orphan_traces
FROM coverage c
FULL OUTER JOIN orphans o
  ON o.usage_date = c.usage_date AND o.endpoint_name = c.endpoint_name
ORDER BY usage_date, endpoint_name
