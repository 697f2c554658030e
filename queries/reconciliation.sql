-- reconciliation: per (usage_date, endpoint_name, entity_name), the usage table's token counts
-- against the payload table's response bodies and the MLflow traces' token usage, request by
-- request, plus the payload table's sampling-weighted estimate of the totals. Column
-- definitions: docs/OUTPUTS.md#reconciliation.
WITH usage_window AS (
  SELECT * FROM usage_costed
  WHERE request_time >= ${window_start} AND request_time < ${window_end}
),
payload_tokens AS (
  SELECT databricks_request_id, MAX(input_tokens) AS input_tokens, MAX(output_tokens) AS output_tokens
  FROM payload_parsed
  WHERE input_tokens IS NOT NULL AND databricks_request_id IS NOT NULL
  GROUP BY databricks_request_id
),
trace_tokens AS (
  SELECT
    client_request_id,
    MAX(token_usage['input_tokens']) AS input_tokens,
    MAX(token_usage['output_tokens']) AS output_tokens
  FROM (
    SELECT client_request_id, trace_token_usage(trace_metadata['mlflow.trace.tokenUsage']) AS token_usage
    FROM traces
    WHERE request_time >= ${window_start} - INTERVAL '1' DAY AND request_time < ${window_end} + INTERVAL '1' DAY
  ) parsed
  WHERE token_usage['input_tokens'] IS NOT NULL AND client_request_id IS NOT NULL
  GROUP BY client_request_id
),
compared AS (
  SELECT
    u.usage_date,
    u.endpoint_name,
    u.entity_name,
    COUNT(*) AS usage_requests,
    SUM(u.input_tokens) AS usage_input_tokens,
    SUM(u.output_tokens) AS usage_output_tokens,
    SUM(CASE WHEN p.databricks_request_id IS NOT NULL THEN 1 ELSE 0 END) AS payload_matched_requests,
    SUM(CASE WHEN p.databricks_request_id IS NOT NULL THEN p.input_tokens - u.input_tokens ELSE 0 END) AS payload_input_difference,
    SUM(CASE WHEN p.databricks_request_id IS NOT NULL THEN p.output_tokens - u.output_tokens ELSE 0 END) AS payload_output_difference,
    SUM(CASE WHEN p.input_tokens <> u.input_tokens OR p.output_tokens <> u.output_tokens THEN 1 ELSE 0 END)
      AS payload_requests_with_difference,
    SUM(CASE WHEN t.client_request_id IS NOT NULL THEN 1 ELSE 0 END) AS trace_matched_requests,
    SUM(CASE WHEN t.client_request_id IS NOT NULL THEN t.input_tokens - u.input_tokens ELSE 0 END) AS trace_input_difference,
    SUM(CASE WHEN t.client_request_id IS NOT NULL THEN t.output_tokens - u.output_tokens ELSE 0 END) AS trace_output_difference,
    SUM(CASE WHEN t.input_tokens <> u.input_tokens OR t.output_tokens <> u.output_tokens THEN 1 ELSE 0 END)
      AS trace_requests_with_difference
  FROM usage_window u
  LEFT JOIN payload_tokens p ON p.databricks_request_id = u.databricks_request_id
  LEFT JOIN trace_tokens t ON t.client_request_id = u.databricks_request_id
  GROUP BY u.usage_date, u.endpoint_name, u.entity_name
),
-- Sampling-weighted estimates from the payload table alone: each logged row stands for
-- 1 / sampling_fraction requests.
estimates AS (
  SELECT
    usage_date,
    endpoint_name,
    entity_name,
    SUM(sample_weight) AS estimated_requests,
    SUM(input_tokens * sample_weight) AS estimated_input_tokens,
    SUM(output_tokens * sample_weight) AS estimated_output_tokens
  FROM payload_parsed
  WHERE request_time >= ${window_start} AND request_time < ${window_end}
  GROUP BY usage_date, endpoint_name, entity_name
)
SELECT
  c.usage_date,
  c.endpoint_name,
  c.entity_name,
  CAST(c.usage_requests AS BIGINT) AS usage_requests,
  CAST(c.usage_input_tokens AS BIGINT) AS usage_input_tokens,
  CAST(c.usage_output_tokens AS BIGINT) AS usage_output_tokens,
  CAST(c.payload_matched_requests AS BIGINT) AS payload_matched_requests,
  CAST(c.payload_input_difference AS BIGINT) AS payload_input_difference,
  CAST(c.payload_output_difference AS BIGINT) AS payload_output_difference,
  CAST(c.payload_requests_with_difference AS BIGINT) AS payload_requests_with_difference,
  CASE WHEN c.payload_matched_requests > 0
       THEN CAST(c.payload_requests_with_difference AS DOUBLE) / c.payload_matched_requests END AS payload_difference_share,
  CAST(c.trace_matched_requests AS BIGINT) AS trace_matched_requests,
  CAST(c.trace_input_difference AS BIGINT) AS trace_input_difference,
  CAST(c.trace_output_difference AS BIGINT) AS trace_output_difference,
  CAST(c.trace_requests_with_difference AS BIGINT) AS trace_requests_with_difference,
  CASE WHEN c.trace_matched_requests > 0
       THEN CAST(c.trace_requests_with_difference AS DOUBLE) / c.trace_matched_requests END AS trace_difference_share,
  CAST(e.estimated_requests AS DOUBLE) AS payload_estimated_requests,
  CAST(e.estimated_input_tokens AS DOUBLE) AS payload_estimated_input_tokens,
  CAST(e.estimated_output_tokens AS DOUBLE) AS payload_estimated_output_tokens
FROM compared c
LEFT JOIN estimates e
  ON e.usage_date = c.usage_date AND e.endpoint_name = c.endpoint_name AND e.entity_name = c.entity_name
ORDER BY c.usage_date, c.endpoint_name, c.entity_name
