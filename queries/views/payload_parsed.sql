-- payload_parsed: one row per payload (inference table) row of the scanned range, with its
-- response body read once by gateway_usage() (this project's function; see docs/OUTPUTS.md).
-- Nothing of the body's text is kept: only its kind, normalised token counts, error code and,
-- for REQUEST_LIMIT_EXCEEDED, which limit refused the call.
-- * input_tokens includes cache reads and writes; output_tokens includes reasoning; the
--   categories are parts of those totals (docs/OUTPUTS.md#token-categories).
-- * valid_sampling_fraction: sampling_fraction is in [1e-9, 1] (false when NULL or NaN).
-- * sample_weight: the requests the row stands for: 1 / sampling_fraction, at most 1e9; 1 when
--   the fraction is not valid (the row is still one request that happened; such rows are
--   counted by payload.invalid_sampling_fraction), so no row drops out of an estimate and a
--   tiny fraction cannot make a weight that overflows.
-- * latency_weight: 1/sampling_fraction in millionths, rounded to a whole number and held as
--   DECIMAL(20,0), so that sums of weights are exact whatever the order of summation and cannot
--   overflow. NULL when the row is not a usable latency sample: status outside 200-299,
--   execution_duration_ms NULL or negative, or sampling_fraction NULL or outside [1e-9, 1].
-- * guardrail_block: 'input' or 'output' for a status-400 row whose response says
--   input_guardrail_triggered or output_guardrail_triggered (an AI Gateway guardrail blocked
--   the request or its answer; input when it says both); NULL otherwise. Only this label is kept.
-- Queries that use none of the body's fields never read `response`.
WITH parsed AS (
  SELECT
    databricks_request_id,
    request_time,
    status_code,
    sampling_fraction,
    execution_duration_ms,
    logging_error_codes,
    served_entity_id,
    requester AS requester_raw,
    gateway_usage(response) AS body,
    -- Nested so that only status-400 bodies are searched (a CASE evaluates a THEN only on the
    -- rows its WHEN selects; an AND would search every body).
    CASE WHEN status_code = 400 THEN
      CASE
        WHEN response LIKE '%input_guardrail_triggered%' THEN 'input'
        WHEN response LIKE '%output_guardrail_triggered%' THEN 'output'
      END
    END AS guardrail_block
  FROM payload
)
SELECT
  p.databricks_request_id,
  p.request_time,
  CAST(p.request_time AS DATE) AS usage_date,
  date_trunc('hour', p.request_time) AS hour,
  COALESCE(e.endpoint_name, '(unknown)') AS endpoint_name,
  COALESCE(e.entity_name, '(unknown)') AS entity_name,
  COALESCE(p.requester_raw, '(unknown)') AS requester,
  p.requester_raw,
  p.served_entity_id,
  p.status_code,
  p.execution_duration_ms,
  COALESCE(p.sampling_fraction >= 0.000000001 AND p.sampling_fraction <= 1, false) AS valid_sampling_fraction,
  CASE
    WHEN p.sampling_fraction >= 0.000000001 AND p.sampling_fraction <= 1 THEN 1 / p.sampling_fraction
    ELSE CAST(1 AS DOUBLE)
  END AS sample_weight,
  CASE
    WHEN p.status_code BETWEEN 200 AND 299
      AND p.execution_duration_ms >= 0
      AND p.sampling_fraction >= 0.000000001
      AND p.sampling_fraction <= 1
    THEN CAST(ROUND(1000000 / p.sampling_fraction) AS DECIMAL(20, 0))
  END AS latency_weight,
  p.logging_error_codes,
  p.body['kind'] AS body_kind,
  p.body['input_tokens'] AS input_tokens,
  p.body['output_tokens'] AS output_tokens,
  p.body['cache_read_tokens'] AS cache_read_tokens,
  p.body['cache_write_tokens'] AS cache_write_tokens,
  p.body['reasoning_tokens'] AS reasoning_tokens,
  p.body['error_code'] AS error_code,
  p.body['limit_source'] AS limit_source,
  p.guardrail_block
FROM parsed p
LEFT JOIN latest_served_entities e
  ON p.served_entity_id = e.served_entity_id
