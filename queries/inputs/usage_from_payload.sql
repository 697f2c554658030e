-- usage (payload-only mode, when the job has no usage table): one row per payload row, read
-- through payload_parsed, with the usage table's columns. Tokens come from the response body.
-- * row_weight: round(1 / sampling_fraction), the requests the sampled row stands for (NULL
--   when sampling_fraction is not in (0, 1]).
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
