-- tag_spend: one row per (usage_date, gateway, tag_key, tag_value) for the tag keys of
-- `[ai_gateway] tag_keys`: the new AI Gateway's request_tags (gateway 'ai_gateway') and the
-- serving-endpoint usage table's usage_context (gateway 'serving_endpoint').
-- Column definitions: docs/OUTPUTS.md#tag_spend. Every invocation counts once under each key,
-- so each key's rows add up to the day's whole spend: tag_value is the tag's value,
-- '(empty)' for an empty value and '(untagged)' when the row has no such key (or no tags).
SELECT
  usage_date,
  gateway,
  tag_key,
  CASE WHEN tag_value IS NULL THEN '(untagged)' WHEN tag_value = '' THEN '(empty)' ELSE tag_value END AS tag_value,
  CAST(COUNT(DISTINCT request_id) AS BIGINT) AS requests,
  CAST(COUNT(*) AS BIGINT) AS invocations,
  CAST(SUM(input_tokens) AS BIGINT) AS input_tokens,
  CAST(SUM(output_tokens) AS BIGINT) AS output_tokens,
  CAST(COALESCE(SUM(cost_usd), 0) AS DECIMAL(38, 12)) AS cost_usd,
  CAST(SUM(CASE WHEN unpriced THEN 1 ELSE 0 END) AS BIGINT) AS unpriced_invocations
FROM gateway_tag_values
GROUP BY usage_date, gateway, tag_key,
  CASE WHEN tag_value IS NULL THEN '(untagged)' WHEN tag_value = '' THEN '(empty)' ELSE tag_value END
ORDER BY usage_date, gateway, tag_key, tag_value
