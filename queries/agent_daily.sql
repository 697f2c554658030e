-- agent_daily: one row per (usage_date, agent, requester) of agent_sessions. Column
-- definitions: docs/OUTPUTS.md#agent_daily.
SELECT
  usage_date,
  agent,
  requester,
  MAX(team) AS team,
  CAST(COUNT(*) AS BIGINT) AS sessions,
  CAST(SUM(CASE WHEN session_id_source = 'rebuilt' THEN 1 ELSE 0 END) AS BIGINT) AS rebuilt_sessions,
  CAST(SUM(requests) AS BIGINT) AS requests,
  CAST(SUM(invocations) AS BIGINT) AS invocations,
  CAST(SUM(subagents) AS BIGINT) AS subagents,
  CAST(SUM(input_tokens) AS BIGINT) AS input_tokens,
  CAST(SUM(output_tokens) AS BIGINT) AS output_tokens,
  CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
  CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
  CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
  CAST(SUM(cost_usd) AS DECIMAL(38, 12)) AS cost_usd,
  CAST(SUM(errors) AS BIGINT) AS errors
FROM agent_sessions
GROUP BY usage_date, agent, requester
ORDER BY usage_date, agent, requester
