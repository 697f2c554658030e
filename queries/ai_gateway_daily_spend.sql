-- ai_gateway_daily_spend: daily_spend for the new AI Gateway: one row per (usage_date,
-- endpoint_name, entity_name, requester, team) of gateway_usage (one row per invocation).
-- Column definitions: docs/OUTPUTS.md#ai_gateway_daily_spend. entity_name is the model the
-- invocation was priced as (destination_model, docs/OUTPUTS.md#the-two-gateways).
SELECT
  usage_date,
  endpoint_name,
  model AS entity_name,
  requester,
  team,
  CAST(COUNT(DISTINCT request_id) AS BIGINT) AS requests,
  CAST(COUNT(*) AS BIGINT) AS invocations,
  CAST(SUM(CASE WHEN status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS BIGINT) AS succeeded,
  CAST(SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS BIGINT) AS rate_limited,
  CAST(SUM(CASE WHEN status_code >= 400 AND status_code <> 429 THEN 1 ELSE 0 END) AS BIGINT) AS failed,
  CAST(SUM(input_tokens) AS BIGINT) AS input_tokens,
  CAST(SUM(output_tokens) AS BIGINT) AS output_tokens,
  CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
  CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
  CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
  CAST(SUM(CASE WHEN tokens_reported THEN 0 ELSE 1 END) AS BIGINT) AS invocations_without_tokens,
  CAST(COALESCE(SUM(cost_usd), 0) AS DECIMAL(38, 12)) AS cost_usd,
  CAST(SUM(CASE WHEN source = 'GUARDRAIL' THEN 1 ELSE 0 END) AS BIGINT) AS judge_invocations,
  CAST(COALESCE(SUM(CASE WHEN source = 'GUARDRAIL' THEN cost_usd END), 0) AS DECIMAL(38, 12)) AS judge_cost_usd,
  CAST(SUM(CASE WHEN NOT priced AND input_tokens + output_tokens > 0 THEN 1 ELSE 0 END) AS BIGINT)
    AS unpriced_invocations,
  ${price_version} AS price_version
FROM gateway_usage
GROUP BY usage_date, endpoint_name, model, requester, team
ORDER BY usage_date, endpoint_name, entity_name, requester, team
