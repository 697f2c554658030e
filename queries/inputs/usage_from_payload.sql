-- usage (payload-only mode, when the job has no usage table): one row per payload row, read
-- through payload_parsed, with the usage table's columns. Tokens come from the response body.
-- * row_weight: round(sample_weight), the requests the sampled row stands for: round(1 /
--   sampling_fraction) for a fraction in [1e-9, 1] (so at most 1e9, which no cast or product
--   downstream overflows), else 1 (payload.invalid_sampling_fraction counts those rows): no
--   row drops out of the estimated spend.
-- * context_team: NULL (payload rows carry no usage_context).
-- * estimated: true.
SELECT
  databricks_request_id,
  request_time,
  status_code,
  requester_raw AS requester,
  input_tokens AS input_token_count,
  output_tokens AS output_token_count,
  CAST(NULL AS STRING) AS context_team,
  served_entity_id,
  CAST(ROUND(sample_weight) AS BIGINT) AS row_weight,
  true AS estimated
FROM payload_parsed
