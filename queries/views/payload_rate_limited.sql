-- payload_rate_limited: the window's HTTP 429 rows of the payload table, with the limit that
-- refused each one as read from its error body (schemas notes §4.3). Only the class is kept,
-- never the body's text.
-- * limit_source: 'user_defined' when the body says "User defined rate limit" (a limit set in
--   the endpoint's AI Gateway); 'workspace_or_provider' for any other REQUEST_LIMIT_EXCEEDED
--   body (the workspace's pay-per-token limits or the model provider's); 'unknown' otherwise
--   (no body logged, or another shape).
SELECT
  date_trunc('hour', p.request_time) AS hour,
  COALESCE(e.endpoint_name, '(unknown)') AS endpoint_name,
  COALESCE(p.requester, '(unknown)') AS requester,
  CASE
    WHEN p.response LIKE '%User defined rate limit%' THEN 'user_defined'
    WHEN p.response LIKE '%REQUEST_LIMIT_EXCEEDED%' THEN 'workspace_or_provider'
    ELSE 'unknown'
  END AS limit_source
FROM payload p
LEFT JOIN latest_served_entities e
  ON p.served_entity_id = e.served_entity_id
WHERE p.status_code = 429
