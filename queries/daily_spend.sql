-- daily_spend: one row per (usage_date, endpoint_name, entity_name, requester, team) of the
-- usage table. Column definitions: docs/OUTPUTS.md#daily_spend.
SELECT
  usage_date,
  endpoint_name,
  entity_name,
  requester,
  team,
  CAST(COUNT(*) AS BIGINT) AS requests,
  CAST(SUM(CASE WHEN status_code BETWEEN 200 AND 299 THEN 1 ELSE 0 END) AS BIGINT) AS succeeded,
  CAST(SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS BIGINT) AS rate_limited,
  CAST(SUM(CASE WHEN status_code >= 400 AND status_code <> 429 THEN 1 ELSE 0 END) AS BIGINT) AS failed,
  CAST(SUM(input_tokens) AS BIGINT) AS input_tokens,
  CAST(SUM(output_tokens) AS BIGINT) AS output_tokens,
  CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
  CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
  CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
  CAST(SUM(CASE WHEN categories_known THEN 1 ELSE 0 END) AS BIGINT) AS requests_with_categories,
  CAST(COALESCE(SUM(cost_usd), 0) AS DECIMAL(38, 12)) AS cost_usd,
  CAST(SUM(CASE WHEN NOT priced AND input_tokens + output_tokens > 0 THEN 1 ELSE 0 END) AS BIGINT)
    AS unpriced_requests,
  ${price_version} AS price_version
FROM usage_costed
WHERE request_time >= ${window_start} AND request_time < ${window_end}
GROUP BY usage_date, endpoint_name, entity_name, requester, team
ORDER BY usage_date, endpoint_name, entity_name, requester, team
