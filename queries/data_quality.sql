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
usage_range AS (
  SELECT databricks_request_id FROM usage_costed
  WHERE request_time >= ${window_start} - INTERVAL '1' DAY AND request_time < ${window_end} + INTERVAL '1' DAY
    AND databricks_request_id IS NOT NULL
),
payload_range AS (
  SELECT databricks_request_id FROM payload_parsed
  WHERE request_time >= ${window_start} - INTERVAL '1' DAY AND request_time < ${window_end} + INTERVAL '1' DAY
    AND databricks_request_id IS NOT NULL
),
-- Anti joins and a grouping rather than DISTINCT id sets: both stay within the memory budget at
-- any size (see src/request_id_buckets.rs).
usage_without_payload AS (
  SELECT u.usage_date, COUNT(*) AS without_payload_row
  FROM usage_window u
  WHERE u.databricks_request_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM payload_range p WHERE p.databricks_request_id = u.databricks_request_id)
  GROUP BY u.usage_date
),
payload_without_usage AS (
  SELECT p.usage_date, COUNT(*) AS without_usage_row
  FROM payload_window p
  WHERE p.databricks_request_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM usage_range u WHERE u.databricks_request_id = p.databricks_request_id)
  GROUP BY p.usage_date
),
-- Rows sharing a request id on a day, beyond the first: COUNT(id) - COUNT(DISTINCT id). One
-- grouping per table: one over both, keyed by table name, measured 13% slower for the whole run.
usage_duplicates AS (
  SELECT usage_date, SUM(copies - 1) AS duplicate_request_id
  FROM (
    SELECT usage_date, databricks_request_id, COUNT(*) AS copies FROM usage_window
    WHERE databricks_request_id IS NOT NULL
    GROUP BY usage_date, databricks_request_id
  ) AS per_id
  GROUP BY usage_date
),
payload_duplicates AS (
  SELECT usage_date, SUM(copies - 1) AS duplicate_request_id
  FROM (
    SELECT usage_date, databricks_request_id, COUNT(*) AS copies FROM payload_window
    WHERE databricks_request_id IS NOT NULL
    GROUP BY usage_date, databricks_request_id
  ) AS per_id
  GROUP BY usage_date
),
usage_days AS (
  SELECT
    u.usage_date,
    COUNT(*) AS table_rows,
    SUM(CASE WHEN u.known_entity THEN 0 ELSE 1 END) AS unknown_served_entity,
    SUM(CASE WHEN u.null_requester THEN 1 ELSE 0 END) AS null_requester,
    SUM(CASE WHEN NOT u.priced AND u.input_tokens + u.output_tokens > 0 THEN 1 ELSE 0 END) AS unpriced_tokens,
    SUM(CASE WHEN u.databricks_request_id IS NULL THEN 1 ELSE 0 END) AS missing_request_id
  FROM usage_window u
  GROUP BY u.usage_date
),
usage_groups AS (
  SELECT DISTINCT hour, endpoint_name, entity_name FROM usage_window
),
-- Payload rows counted per group before matching, so the join is between two small sets.
payload_groups AS (
  SELECT usage_date, hour, endpoint_name, entity_name, COUNT(*) AS payload_rows
  FROM payload_window
  GROUP BY usage_date, hour, endpoint_name, entity_name
),
payload_outside_groups AS (
  SELECT p.usage_date, SUM(p.payload_rows) AS outside_usage_groups
  FROM payload_groups p
  LEFT JOIN usage_groups g
    ON g.hour = p.hour AND g.endpoint_name = p.endpoint_name AND g.entity_name = p.entity_name
  WHERE g.hour IS NULL
  GROUP BY p.usage_date
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
    SUM(CASE WHEN p.sample_weight IS NULL THEN 1 ELSE 0 END) AS invalid_sampling_fraction,
    SUM(CASE WHEN p.status_code BETWEEN 200 AND 299 AND p.latency_weight IS NULL THEN 1 ELSE 0 END)
      AS not_a_latency_sample
  FROM payload_window p
  GROUP BY p.usage_date
),
usage_checks AS (
  SELECT d.*, COALESCE(w.without_payload_row, 0) AS without_payload_row,
    COALESCE(x.duplicate_request_id, 0) AS duplicate_request_id
  FROM usage_days d
  LEFT JOIN usage_without_payload w ON w.usage_date = d.usage_date
  LEFT JOIN usage_duplicates x ON x.usage_date = d.usage_date
),
payload_checks AS (
  SELECT d.*, COALESCE(w.without_usage_row, 0) AS without_usage_row,
    COALESCE(x.duplicate_request_id, 0) AS duplicate_request_id,
    COALESCE(o.outside_usage_groups, 0) AS outside_usage_groups
  FROM payload_days d
  LEFT JOIN payload_without_usage w ON w.usage_date = d.usage_date
  LEFT JOIN payload_duplicates x ON x.usage_date = d.usage_date
  LEFT JOIN payload_outside_groups o ON o.usage_date = d.usage_date
),
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
  FROM usage_checks d
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
  FROM payload_checks d
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
