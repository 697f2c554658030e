-- focus_costs: daily_spend as a FinOps FOCUS 1.2 cost and usage dataset. One row per (charge day,
-- endpoint, entity, requester, team, Tags): a daily_spend row, split by the usage_context values
-- of the [ai_gateway] tag_keys its usage rows carry (focus_tagged_usage, made in
-- src/focus_tags.rs: Tags is their JSON object with the team); every cost column is the rows'
-- cost_usd summed as in daily_spend, so the table sums to daily_spend to the picodollar. Column definitions:
-- docs/OUTPUTS.md#focus_costs. The account, provider, publisher, invoice issuer and service
-- names come from the job file's [focus] section (the focus_* variables). Column names keep FOCUS's case
-- (backquoted, which DataFusion and Spark SQL both read as identifiers); custom columns start
-- with x_ as the specification asks.
WITH spend AS (
  SELECT
    usage_date,
    endpoint_name,
    entity_name,
    requester,
    team,
    tags,
    CAST(SUM(row_weight) AS BIGINT) AS requests,
    CAST(SUM(input_tokens * row_weight) AS BIGINT) AS input_tokens,
    CAST(SUM(output_tokens * row_weight) AS BIGINT) AS output_tokens,
    CAST(SUM(cache_read_tokens * row_weight) AS BIGINT) AS cache_read_tokens,
    CAST(SUM(cache_write_tokens * row_weight) AS BIGINT) AS cache_write_tokens,
    CAST(SUM(reasoning_tokens * row_weight) AS BIGINT) AS reasoning_tokens,
    CAST(COALESCE(SUM(cost_usd * CAST(row_weight AS DECIMAL(10, 0))), 0) AS DECIMAL(38, 12)) AS cost_usd,
    CAST(SUM(CASE WHEN NOT priced AND input_tokens + output_tokens > 0 THEN row_weight ELSE 0 END) AS BIGINT)
      AS unpriced_requests,
    ${price_version} AS price_version,
    MAX(estimated) AS estimated
  FROM focus_tagged_usage
  WHERE usage_date BETWEEN ${window_from} AND ${window_to}
  GROUP BY usage_date, endpoint_name, entity_name, requester, team, tags
)
SELECT
  usage_date,
  ${focus_billing_account_id} AS `BillingAccountId`,
  ${focus_billing_account_name} AS `BillingAccountName`,
  'USD' AS `BillingCurrency`,
  date_trunc('month', CAST(usage_date AS TIMESTAMP)) AS `BillingPeriodStart`,
  date_trunc('month', CAST(usage_date AS TIMESTAMP)) + INTERVAL '1' MONTH AS `BillingPeriodEnd`,
  CAST(usage_date AS TIMESTAMP) AS `ChargePeriodStart`,
  CAST(usage_date AS TIMESTAMP) + INTERVAL '1' DAY AS `ChargePeriodEnd`,
  'Usage' AS `ChargeCategory`,
  CAST(NULL AS STRING) AS `ChargeClass`,
  concat('Model serving tokens: endpoint ', endpoint_name, ', served entity ', entity_name) AS `ChargeDescription`,
  'Usage-Based' AS `ChargeFrequency`,
  cost_usd AS `BilledCost`,
  cost_usd AS `EffectiveCost`,
  cost_usd AS `ListCost`,
  cost_usd AS `ContractedCost`,
  CAST(input_tokens + output_tokens AS DECIMAL(20, 0)) AS `PricingQuantity`,
  'Tokens' AS `PricingUnit`,
  'Standard' AS `PricingCategory`,
  CAST(input_tokens + output_tokens AS DECIMAL(20, 0)) AS `ConsumedQuantity`,
  'Tokens' AS `ConsumedUnit`,
  ${focus_provider_name} AS `ProviderName`,
  ${focus_publisher_name} AS `PublisherName`,
  ${focus_invoice_issuer_name} AS `InvoiceIssuerName`,
  'AI and Machine Learning' AS `ServiceCategory`,
  'Generative AI' AS `ServiceSubcategory`,
  ${focus_service_name} AS `ServiceName`,
  endpoint_name AS `ResourceId`,
  endpoint_name AS `ResourceName`,
  'Serving Endpoint' AS `ResourceType`,
  entity_name AS `SkuId`,
  tags AS `Tags`,
  requester AS `x_Requester`,
  team AS `x_Team`,
  requests AS `x_Requests`,
  input_tokens AS `x_InputTokens`,
  output_tokens AS `x_OutputTokens`,
  cache_read_tokens AS `x_CacheReadTokens`,
  cache_write_tokens AS `x_CacheWriteTokens`,
  reasoning_tokens AS `x_ReasoningTokens`,
  unpriced_requests AS `x_UnpricedRequests`,
  price_version AS `x_PriceVersion`,
  estimated AS `x_Estimated`
FROM spend
ORDER BY usage_date, endpoint_name, entity_name, requester, team, tags
