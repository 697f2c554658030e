-- trace_spend: one row per MLflow trace of the window that matches at least one gateway
-- request: the cost of one agent run. Column definitions: docs/OUTPUTS.md#trace_spend.
WITH matched AS (
  SELECT
    t.trace_id,
    t.usage_date,
    t.request_time,
    t.state,
    t.execution_duration_ms,
    t.experiment_id,
    u.endpoint_name,
    u.input_tokens,
    u.output_tokens,
    u.cache_read_tokens,
    u.cache_write_tokens,
    u.reasoning_tokens,
    u.cost_usd,
    u.priced
  FROM traces_window t
  JOIN usage_costed u
    ON u.databricks_request_id = t.client_request_id
)
SELECT
  usage_date,
  trace_id,
  MAX(experiment_id) AS experiment_id,
  MIN(endpoint_name) AS endpoint_name,
  CAST(COUNT(*) AS BIGINT) AS requests,
  CAST(SUM(input_tokens) AS BIGINT) AS input_tokens,
  CAST(SUM(output_tokens) AS BIGINT) AS output_tokens,
  CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens,
  CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
  CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
  CAST(COALESCE(SUM(cost_usd), 0) AS DECIMAL(38, 12)) AS cost_usd,
  CAST(SUM(CASE WHEN NOT priced AND input_tokens + output_tokens > 0 THEN 1 ELSE 0 END) AS BIGINT) AS unpriced_requests,
  ${price_version} AS price_version,
  MAX(state) AS state,
  MAX(execution_duration_ms) AS execution_duration_ms,
  MIN(request_time) AS trace_request_time
FROM matched
GROUP BY usage_date, trace_id
ORDER BY usage_date, trace_id
