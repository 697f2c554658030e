-- daily_spend: one row per (usage_date, endpoint_name, entity_name, requester, team) of the
-- usage table. Column definitions: docs/OUTPUTS.md#daily_spend. Every count is weighted by
-- row_weight, which is 1 for usage-table rows (so the sums are plain counts); only in
-- payload-only mode does it estimate (estimated = true).
SELECT
  usage_date,
  endpoint_name,
  entity_name,
  requester,
  team,
  CAST(SUM(row_weight) AS BIGINT) AS requests,
  CAST(SUM(CASE WHEN status_code BETWEEN 200 AND 299 THEN row_weight ELSE 0 END) AS BIGINT) AS succeeded,
  CAST(SUM(CASE WHEN status_code = 429 THEN row_weight ELSE 0 END) AS BIGINT) AS rate_limited,
  CAST(SUM(CASE WHEN status_code >= 400 AND status_code <> 429 THEN row_weight ELSE 0 END) AS BIGINT) AS failed,
  CAST(SUM(input_tokens * row_weight) AS BIGINT) AS input_tokens,
  CAST(SUM(output_tokens * row_weight) AS BIGINT) AS output_tokens,
  CAST(SUM(cache_read_tokens * row_weight) AS BIGINT) AS cache_read_tokens,
  CAST(SUM(cache_write_tokens * row_weight) AS BIGINT) AS cache_write_tokens,
  CAST(SUM(reasoning_tokens * row_weight) AS BIGINT) AS reasoning_tokens,
  CAST(SUM(CASE WHEN categories_known THEN row_weight ELSE 0 END) AS BIGINT) AS requests_with_categories,
  CAST(COALESCE(SUM(cost_usd * CAST(row_weight AS DECIMAL(10, 0))), 0) AS DECIMAL(38, 12)) AS cost_usd,
  CAST(SUM(CASE WHEN NOT priced AND input_tokens + output_tokens > 0 THEN row_weight ELSE 0 END) AS BIGINT)
    AS unpriced_requests,
  ${price_version} AS price_version,
  MAX(estimated) AS estimated
FROM usage_costed
WHERE request_time >= ${window_start} AND request_time < ${window_end}
  AND usage_date BETWEEN ${window_from} AND ${window_to}
GROUP BY usage_date, endpoint_name, entity_name, requester, team
ORDER BY usage_date, endpoint_name, entity_name, requester, team
