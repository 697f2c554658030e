-- input_checks: rows of the window that the outputs count but could not fully use. Reported
-- in the run summary (and logged as warnings); never the offending values themselves.
-- * usage_unknown_served_entity: usage rows whose served_entity_id matches no served entity.
-- * usage_null_requester: usage rows with a NULL requester (counted as '(unknown)').
-- * usage_unpriced_with_tokens: usage rows with tokens but no effective price.
-- * payload_2xx_not_a_latency_sample: 2xx payload rows left out of latency quantiles for a NULL
--   or negative execution_duration_ms or a sampling_fraction outside [1e-9, 1].
-- * payload_rows_without_usage_group: payload rows whose (hour, endpoint, entity) has no usage
--   row, so no hourly_errors row can carry their latency.
SELECT 'usage_unknown_served_entity' AS check_name,
       CAST(SUM(CASE WHEN known_entity THEN 0 ELSE 1 END) AS BIGINT) AS row_count
FROM usage_enriched
WHERE request_time >= ${window_start} AND request_time < ${window_end}
UNION ALL
SELECT 'usage_null_requester', CAST(SUM(CASE WHEN null_requester THEN 1 ELSE 0 END) AS BIGINT)
FROM usage_enriched
WHERE request_time >= ${window_start} AND request_time < ${window_end}
UNION ALL
SELECT 'usage_unpriced_with_tokens',
       CAST(SUM(CASE WHEN NOT priced AND input_tokens + output_tokens > 0 THEN 1 ELSE 0 END) AS BIGINT)
FROM usage_enriched
WHERE request_time >= ${window_start} AND request_time < ${window_end}
UNION ALL
SELECT 'payload_2xx_not_a_latency_sample',
       CAST(SUM(CASE WHEN status_code BETWEEN 200 AND 299 AND latency_weight IS NULL THEN 1 ELSE 0 END) AS BIGINT)
FROM payload_enriched
UNION ALL
SELECT 'payload_rows_without_usage_group', CAST(COUNT(*) AS BIGINT)
FROM payload_enriched p
WHERE NOT EXISTS (
  SELECT 1 FROM usage_enriched u
  WHERE u.request_time >= ${window_start} AND u.request_time < ${window_end}
    AND u.hour = p.hour AND u.endpoint_name = p.endpoint_name AND u.entity_name = p.entity_name
)
