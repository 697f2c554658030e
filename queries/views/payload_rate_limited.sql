-- payload_rate_limited: the window's HTTP 429 rows of the payload table, with the limit that
-- refused each one as read from its error body by gateway_usage() (schemas notes §4.3):
-- * limit_source: 'user_defined' when a REQUEST_LIMIT_EXCEEDED body says "User defined rate
--   limit" (a limit set in the endpoint's AI Gateway); 'workspace_or_provider' for any other
--   REQUEST_LIMIT_EXCEEDED body; 'unknown' otherwise (no body logged, or another shape).
SELECT
  hour,
  endpoint_name,
  requester,
  COALESCE(limit_source, 'unknown') AS limit_source
FROM payload_parsed
WHERE status_code = 429
  AND request_time >= ${window_start} AND request_time < ${window_end}
