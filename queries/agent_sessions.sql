-- agent_sessions: one row per coding-agent session and UTC date of the new AI Gateway
-- (gateway_usage rows whose agent is known; guardrail judge calls, source GUARDRAIL, left out).
-- Column definitions: docs/OUTPUTS.md#agent_sessions.
-- A session is the agent's session id (session_metadata.client_session_id, '' counting as
-- none) per requester and agent; rows without one are grouped by (requester, agent) into
-- sessions that end after 30 minutes without a call (session_id 'rebuilt/<agent>/<requester>/<n>',
-- n counting that requester's and agent's rebuilt sessions of the date from 1). Sessions are
-- cut at midnight UTC, so a date's rows never depend on another date's.
WITH agent_rows AS (
  SELECT *
  FROM gateway_usage
  WHERE agent IS NOT NULL AND (source IS NULL OR source <> 'GUARDRAIL')
),
unnamed AS (
  SELECT
    r.*,
    LAG(event_time) OVER (
      PARTITION BY usage_date, requester, agent ORDER BY event_time, request_id, invocation_id
    ) AS previous_time
  FROM agent_rows r
  WHERE client_session_id IS NULL
),
rebuilt AS (
  SELECT
    u.*,
    SUM(CASE WHEN previous_time IS NULL OR event_time > previous_time + INTERVAL '30' MINUTE THEN 1 ELSE 0 END)
      OVER (
        PARTITION BY usage_date, requester, agent ORDER BY event_time, request_id, invocation_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS session_number
  FROM unnamed u
),
sessions AS (
  SELECT
    usage_date, request_id, event_time, requester, team, agent, agent_version, surface,
    client_subagent_id, status_code, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    reasoning_tokens, priced, cost_usd,
    client_session_id AS session_id, 'client' AS session_id_source
  FROM agent_rows
  WHERE client_session_id IS NOT NULL
  UNION ALL
  SELECT
    usage_date, request_id, event_time, requester, team, agent, agent_version, surface,
    client_subagent_id, status_code, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    reasoning_tokens, priced, cost_usd,
    CONCAT('rebuilt/', agent, '/', requester, '/', CAST(session_number AS STRING)) AS session_id,
    'rebuilt' AS session_id_source
  FROM rebuilt
)
SELECT
  usage_date,
  session_id,
  MAX(session_id_source) AS session_id_source,
  agent,
  MAX(agent_version) AS agent_version,
  MAX(surface) AS surface,
  requester,
  MAX(team) AS team,
  MIN(event_time) AS started_at,
  MAX(event_time) AS ended_at,
  CAST(COUNT(DISTINCT request_id) AS BIGINT) AS requests,
  CAST(COUNT(*) AS BIGINT) AS invocations,
  CAST(COUNT(DISTINCT client_subagent_id) AS BIGINT) AS subagents,
  CAST(SUM(input_tokens) AS BIGINT) AS input_tokens,
  CAST(SUM(output_tokens) AS BIGINT) AS output_tokens,
  CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
  CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
  CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
  CAST(COALESCE(SUM(cost_usd), 0) AS DECIMAL(38, 12)) AS cost_usd,
  CAST(SUM(CASE WHEN NOT priced AND input_tokens + output_tokens > 0 THEN 1 ELSE 0 END) AS BIGINT)
    AS unpriced_invocations,
  CAST(SUM(CASE WHEN status_code BETWEEN 200 AND 299 THEN 0 ELSE 1 END) AS BIGINT) AS errors,
  CAST(SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS BIGINT) AS rate_limited
FROM sessions
GROUP BY usage_date, session_id, agent, requester
ORDER BY usage_date, agent, requester, started_at, session_id
