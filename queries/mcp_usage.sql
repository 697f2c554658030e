-- mcp_usage: one row per (usage_date, endpoint_name, tool, requester) of the new AI Gateway's
-- MCP service calls (gateway_usage rows with service_type MCP_SERVICE). Column definitions:
-- docs/OUTPUTS.md#mcp_usage. tool: mcp_metadata.tool_name, or for a server-level call
-- (no tool) its JSON-RPC method in parentheses, '(tools/list)'; '(unknown)' when neither.
WITH calls AS (
  SELECT
    usage_date,
    endpoint_name,
    COALESCE(mcp_tool_name, CONCAT('(', COALESCE(mcp_method, 'unknown'), ')')) AS tool,
    requester,
    mcp_server_type,
    status_code,
    latency_ms,
    input_tokens,
    output_tokens
  FROM gateway_usage
  WHERE service_type = 'MCP_SERVICE'
),
counts AS (
  SELECT
    usage_date,
    endpoint_name,
    tool,
    requester,
    MAX(mcp_server_type) AS server_type,
    CAST(COUNT(*) AS BIGINT) AS calls,
    CAST(SUM(CASE WHEN status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS BIGINT) AS succeeded,
    CAST(SUM(CASE WHEN status_code BETWEEN 400 AND 499 AND status_code <> 429 THEN 1 ELSE 0 END) AS BIGINT)
      AS http_4xx,
    CAST(SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS BIGINT) AS http_429,
    CAST(SUM(CASE WHEN status_code BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS BIGINT) AS http_5xx,
    CAST(SUM(input_tokens + output_tokens) AS BIGINT) AS tokens,
    -- The latency quantiles' group sizes.
    SUM(CASE WHEN latency_ms IS NOT NULL THEN 1 ELSE 0 END) AS latency_calls
  FROM calls
  GROUP BY usage_date, endpoint_name, tool, requester
),
ranks AS (
  SELECT
    usage_date, endpoint_name, tool, requester, latency_ms,
    ROW_NUMBER() OVER (PARTITION BY usage_date, endpoint_name, tool, requester ORDER BY latency_ms) AS rank_in_group
  FROM calls
  WHERE latency_ms IS NOT NULL
),
-- Nearest rank, the group sizes from counts joined back rather than COUNT(*) OVER the whole
-- group (see ai_gateway_hourly_errors.sql). A group with a NULL requester matches no counts
-- row here, nor below.
latency AS (
  SELECT
    r.usage_date, r.endpoint_name, r.tool, r.requester,
    MIN(CASE WHEN r.rank_in_group * 100 >= c.latency_calls * 50 THEN r.latency_ms END) AS p50,
    MIN(CASE WHEN r.rank_in_group * 100 >= c.latency_calls * 95 THEN r.latency_ms END) AS p95
  FROM counts c
  JOIN ranks r
    ON r.usage_date = c.usage_date AND r.endpoint_name = c.endpoint_name AND r.tool = c.tool
    AND r.requester = c.requester
  GROUP BY r.usage_date, r.endpoint_name, r.tool, r.requester
)
SELECT
  c.usage_date,
  c.endpoint_name,
  c.tool,
  c.requester,
  c.server_type,
  c.calls,
  c.succeeded,
  c.calls - c.succeeded AS errors,
  c.http_4xx,
  c.http_429,
  c.http_5xx,
  CAST(l.p50 AS BIGINT) AS p50_latency_ms,
  CAST(l.p95 AS BIGINT) AS p95_latency_ms,
  c.tokens
FROM counts c
LEFT JOIN latency l
  ON l.usage_date = c.usage_date AND l.endpoint_name = c.endpoint_name AND l.tool = c.tool
  AND l.requester = c.requester
ORDER BY c.usage_date, c.endpoint_name, c.tool, c.requester
