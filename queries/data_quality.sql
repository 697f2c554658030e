-- data_quality: one row per (usage_date, table_name, check_name) for each day of the window on
-- which the table has rows: how many rows of that table and day fail the check. Counts only,
-- never the offending values. Column definitions and checks: docs/OUTPUTS.md#data_quality.
-- Request ids are matched across the two tables with one day of slack on either side.
WITH usage_window AS (
  SELECT * FROM usage_costed
  WHERE request_time >= ${window_start} AND request_time < ${window_end}
),
payload_window AS (
  SELECT * FROM payload_parsed
  WHERE request_time >= ${window_start} AND request_time < ${window_end}
),
usage_ids AS (
  SELECT DISTINCT databricks_request_id FROM usage_costed
  WHERE request_time >= ${window_start} - INTERVAL '1' DAY AND request_time < ${window_end} + INTERVAL '1' DAY
    AND databricks_request_id IS NOT NULL
),
payload_ids AS (
  SELECT DISTINCT databricks_request_id FROM payload_parsed
  WHERE request_time >= ${window_start} - INTERVAL '1' DAY AND request_time < ${window_end} + INTERVAL '1' DAY
    AND databricks_request_id IS NOT NULL
),
usage_days AS (
  SELECT
    u.usage_date,
    COUNT(*) AS table_rows,
    SUM(CASE WHEN u.known_entity THEN 0 ELSE 1 END) AS unknown_served_entity,
    SUM(CASE WHEN u.null_requester THEN 1 ELSE 0 END) AS null_requester,
    SUM(CASE WHEN NOT u.priced AND u.input_tokens + u.output_tokens > 0 THEN 1 ELSE 0 END) AS unpriced_tokens,
    SUM(CASE WHEN u.databricks_request_id IS NULL THEN 1 ELSE 0 END) AS missing_request_id,
    SUM(CASE WHEN u.databricks_request_id IS NOT NULL AND p.databricks_request_id IS NULL THEN 1 ELSE 0 END)
      AS without_payload_row,
    COUNT(u.databricks_request_id) - COUNT(DISTINCT u.databricks_request_id) AS duplicate_request_id
  FROM usage_window u
  LEFT JOIN payload_ids p ON p.databricks_request_id = u.databricks_request_id
  GROUP BY u.usage_date
),
usage_groups AS (
  SELECT DISTINCT hour, endpoint_name, entity_name FROM usage_window
),
payload_days AS (
  SELECT
    p.usage_date,
    COUNT(*) AS table_rows,
    SUM(CASE WHEN p.body_kind IN ('invalid_json', 'invalid_usage', 'empty') THEN 1 ELSE 0 END) AS unparseable_response,
    SUM(CASE WHEN array_contains(p.logging_error_codes, 'MAX_REQUEST_SIZE_EXCEEDED')
              OR array_contains(p.logging_error_codes, 'MAX_RESPONSE_SIZE_EXCEEDED') THEN 1 ELSE 0 END)
      AS not_logged_for_size,
    SUM(CASE WHEN p.databricks_request_id IS NULL THEN 1 ELSE 0 END) AS missing_request_id,
    SUM(CASE WHEN p.databricks_request_id IS NOT NULL AND u.databricks_request_id IS NULL THEN 1 ELSE 0 END)
      AS without_usage_row,
    COUNT(p.databricks_request_id) - COUNT(DISTINCT p.databricks_request_id) AS duplicate_request_id,
    SUM(CASE WHEN p.sample_weight IS NULL THEN 1 ELSE 0 END) AS invalid_sampling_fraction,
    SUM(CASE WHEN p.status_code BETWEEN 200 AND 299 AND p.latency_weight IS NULL THEN 1 ELSE 0 END)
      AS not_a_latency_sample,
    SUM(CASE WHEN g.hour IS NULL THEN 1 ELSE 0 END) AS outside_usage_groups
  FROM payload_window p
  LEFT JOIN usage_ids u ON u.databricks_request_id = p.databricks_request_id
  LEFT JOIN usage_groups g
    ON g.hour = p.hour AND g.endpoint_name = p.endpoint_name AND g.entity_name = p.entity_name
  GROUP BY p.usage_date
),
-- Each day's counts are computed once and turned into one row per check (a UNION of one
-- SELECT per check would compute usage_days and payload_days once per check).
checks AS (
  SELECT d.usage_date, 'usage' AS table_name, c.check_name,
    CASE c.check_name
      WHEN 'unknown_served_entity' THEN d.unknown_served_entity
      WHEN 'null_requester' THEN d.null_requester
      WHEN 'unpriced_tokens' THEN d.unpriced_tokens
      WHEN 'missing_request_id' THEN d.missing_request_id
      WHEN 'without_payload_row' THEN d.without_payload_row
      WHEN 'duplicate_request_id' THEN d.duplicate_request_id
    END AS failed_rows,
    d.table_rows
  FROM usage_days d
  CROSS JOIN (VALUES ('unknown_served_entity'), ('null_requester'), ('unpriced_tokens'), ('missing_request_id'),
                     ('without_payload_row'), ('duplicate_request_id')) AS c(check_name)
  UNION ALL
  SELECT d.usage_date, 'payload' AS table_name, c.check_name,
    CASE c.check_name
      WHEN 'unparseable_response' THEN d.unparseable_response
      WHEN 'not_logged_for_size' THEN d.not_logged_for_size
      WHEN 'missing_request_id' THEN d.missing_request_id
      WHEN 'without_usage_row' THEN d.without_usage_row
      WHEN 'duplicate_request_id' THEN d.duplicate_request_id
      WHEN 'invalid_sampling_fraction' THEN d.invalid_sampling_fraction
      WHEN 'not_a_latency_sample' THEN d.not_a_latency_sample
      WHEN 'outside_usage_groups' THEN d.outside_usage_groups
    END AS failed_rows,
    d.table_rows
  FROM payload_days d
  CROSS JOIN (VALUES ('unparseable_response'), ('not_logged_for_size'), ('missing_request_id'), ('without_usage_row'),
                     ('duplicate_request_id'), ('invalid_sampling_fraction'), ('not_a_latency_sample'),
                     ('outside_usage_groups')) AS c(check_name)
)
SELECT
  usage_date,
  table_name,
  check_name,
  CAST(failed_rows AS BIGINT) AS failed_rows,
  CAST(table_rows AS BIGINT) AS table_rows,
  CAST(failed_rows AS DOUBLE) / table_rows AS share
FROM checks
ORDER BY usage_date, table_name, check_name
