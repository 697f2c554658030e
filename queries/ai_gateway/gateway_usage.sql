-- gateway_usage: the new AI Gateway's usage rows (system.ai_gateway.usage, read through its
-- canonical view gateway_usage_source, src/ai_gateway/contract.rs) of the run window: one row
-- per invocation. Definitions: docs/OUTPUTS.md#the-new-ai-gateway-beta.
-- * endpoint_name: service_name (the model or MCP service), else endpoint_name, else '(unknown)'.
-- * service_type: NULL reads as MODEL_SERVICE (older rows).
-- * destination: destination_name, else destination_model; model (the price key):
--   destination_model, else destination_name, else endpoint_name.
-- * team: request_tags[team_tag] when not empty, then teams.team of the requester, then
--   'unattributed'.
-- * agent: session_metadata.coding_agent when not empty, else recognised from user_agent
--   (first match: claude-cli/ -> claude-code, codex* -> codex, cursor, gemini-cli -> gemini,
--   copilot -> github-copilot, opencode*, ucode/); NULL when neither says it is an agent.
--   agent_version: session_metadata.agent_version, else the user agent's first product
--   version for a recognised agent.
-- * tokens: input_tokens includes the cached tokens; NULL or negative counts bill as 0
--   (tokens_reported says whether the row had counts). cache_read_tokens <= input_tokens,
--   cache_write_tokens <= input_tokens - cache_read_tokens, reasoning_tokens <= output_tokens,
--   so every token is billed once, at its category's price (a missing category price falls
--   back to the input or output price); cost_usd exact DECIMAL(28,12), NULL when unpriced.
-- * duplicate deliveries: rows with the same (request_id, invocation_id) are one invocation
--   delivered more than once (the table may be at-least-once): one row is kept, the first by
--   event_time, status_code, latency_ms, input_tokens, output_tokens, requester, endpoint_name,
--   destination_name, destination_model. Rows without invocation_id (older schema versions)
--   are all kept.
WITH delivered AS (
  SELECT
    u.*,
    ROW_NUMBER() OVER (
      PARTITION BY u.request_id, u.invocation_id
      ORDER BY u.event_time, u.status_code, u.latency_ms, u.input_tokens, u.output_tokens, u.requester,
               u.endpoint_name, u.destination_name, u.destination_model
    ) AS delivery
  FROM gateway_usage_source u
  WHERE u.event_time >= ${window_start} AND u.event_time < ${window_end}
),
base AS (
  SELECT
    u.*,
    CAST(u.event_time AS DATE) AS usage_date,
    date_trunc('hour', u.event_time) AS hour,
    CAST(GREATEST(COALESCE(u.input_tokens, 0), 0) AS BIGINT) AS input_billed,
    CAST(GREATEST(COALESCE(u.output_tokens, 0), 0) AS BIGINT) AS output_billed,
    u.request_tags[${team_tag}] AS tag_team,
    CASE
      WHEN u.coding_agent <> '' THEN u.coding_agent
      WHEN u.user_agent LIKE 'claude-cli/%' THEN 'claude-code'
      WHEN u.user_agent LIKE 'codex%' THEN 'codex'
      WHEN LOWER(u.user_agent) LIKE '%cursor%' THEN 'cursor'
      WHEN LOWER(u.user_agent) LIKE '%gemini-cli%' THEN 'gemini'
      WHEN LOWER(u.user_agent) LIKE '%copilot%' THEN 'github-copilot'
      WHEN u.user_agent LIKE 'opencode%' THEN 'opencode'
      WHEN u.user_agent LIKE 'ucode/%' THEN 'ucode'
    END AS agent
  FROM delivered u
  WHERE u.delivery = 1 OR u.invocation_id IS NULL
),
split AS (
  SELECT
    b.*,
    LEAST(GREATEST(COALESCE(b.cache_read_input_tokens, 0), 0), b.input_billed) AS cache_read_billed,
    LEAST(GREATEST(COALESCE(b.output_reasoning_tokens, 0), 0), b.output_billed) AS reasoning_billed
  FROM base b
),
capped AS (
  SELECT
    s.*,
    LEAST(GREATEST(COALESCE(s.cache_creation_input_tokens, 0), 0), s.input_billed - s.cache_read_billed)
      AS cache_write_billed,
    COALESCE(s.destination_model, s.destination_name, s.endpoint_name, '(unknown)') AS model
  FROM split s
)
SELECT
  c.request_id,
  c.invocation_id,
  c.event_time,
  c.usage_date,
  c.hour,
  COALESCE(c.service_name, c.endpoint_name, '(unknown)') AS endpoint_name,
  COALESCE(c.service_type, 'MODEL_SERVICE') AS service_type,
  COALESCE(c.destination_name, c.destination_model, '(none)') AS destination,
  c.model,
  COALESCE(c.requester, '(unknown)') AS requester,
  CASE
    WHEN c.tag_team <> '' THEN c.tag_team
    WHEN t.team <> '' THEN t.team
    ELSE 'unattributed'
  END AS team,
  c.status_code,
  c.latency_ms,
  c.time_to_first_byte_ms,
  c.request_tags,
  c.source,
  c.agent,
  CASE
    WHEN c.agent IS NULL THEN NULL
    WHEN c.agent_version <> '' THEN c.agent_version
    WHEN c.user_agent NOT LIKE 'Mozilla/%' THEN NULLIF(split_part(split_part(c.user_agent, ' ', 1), '/', 2), '')
  END AS agent_version,
  NULLIF(c.surface, '') AS surface,
  NULLIF(c.client_session_id, '') AS client_session_id,
  NULLIF(c.client_subagent_id, '') AS client_subagent_id,
  c.mcp_server_type,
  c.mcp_method,
  c.mcp_tool_name,
  c.attempts,
  c.attempt_count,
  c.input_tokens IS NOT NULL OR c.output_tokens IS NOT NULL AS tokens_reported,
  c.input_billed AS input_tokens,
  c.output_billed AS output_tokens,
  CAST(c.cache_read_billed AS BIGINT) AS cache_read_tokens,
  CAST(c.cache_write_billed AS BIGINT) AS cache_write_tokens,
  CAST(c.reasoning_billed AS BIGINT) AS reasoning_tokens,
  p.entity_name IS NOT NULL AS priced,
  CAST(
    CAST(CAST(c.input_billed - c.cache_read_billed - c.cache_write_billed AS DECIMAL(18, 0)) * p.input_usd_per_token AS DECIMAL(30, 12))
    + CAST(CAST(c.cache_read_billed AS DECIMAL(18, 0)) * COALESCE(p.cache_read_usd_per_token, p.input_usd_per_token) AS DECIMAL(30, 12))
    + CAST(CAST(c.cache_write_billed AS DECIMAL(18, 0)) * COALESCE(p.cache_write_usd_per_token, p.input_usd_per_token) AS DECIMAL(30, 12))
    + CAST(CAST(c.output_billed - c.reasoning_billed AS DECIMAL(18, 0)) * p.output_usd_per_token AS DECIMAL(30, 12))
    + CAST(CAST(c.reasoning_billed AS DECIMAL(18, 0)) * COALESCE(p.reasoning_usd_per_token, p.output_usd_per_token) AS DECIMAL(30, 12))
    AS DECIMAL(28, 12)) AS cost_usd
FROM capped c
LEFT JOIN teams t
  ON c.requester = t.principal
LEFT JOIN price_periods p
  ON p.entity_name = c.model
  AND p.effective_from <= c.event_time
  AND (p.effective_until IS NULL OR c.event_time < p.effective_until)
