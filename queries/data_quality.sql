-- data_quality: one row per (usage_date, table_name, check_name) for each day of the window on
-- which the table has rows: how many rows of that table and day fail the check. Counts only,
-- never the offending values. Column definitions and checks: docs/OUTPUTS.md#data_quality.
-- Request ids are matched across the two tables with one day of slack on either side.
-- Rows with a NULL request_time are in no window: they are counted by the null_request_time
-- checks from usage_undated and payload_undated (payload rows on their request_date, the rest
-- on the window's last date), and a day that has only such rows gets only that check's row.
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
    SUM(CASE WHEN u.databricks_request_id IS NULL THEN 1 ELSE 0 END) AS missing_request_id,
    SUM(CASE WHEN u.negative_tokens THEN 1 ELSE 0 END) AS negative_tokens,
    SUM(CASE WHEN u.status_code IS NULL THEN 1 ELSE 0 END) AS null_status_code
  FROM usage_window u
  GROUP BY u.usage_date
),
usage_undated_days AS (
  SELECT usage_date, COUNT(*) AS null_request_time FROM usage_undated GROUP BY usage_date
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
    SUM(CASE WHEN NOT p.valid_sampling_fraction THEN 1 ELSE 0 END) AS invalid_sampling_fraction,
    SUM(CASE WHEN p.status_code BETWEEN 200 AND 299 AND p.latency_weight IS NULL THEN 1 ELSE 0 END)
      AS not_a_latency_sample,
    SUM(CASE WHEN p.status_code IS NULL THEN 1 ELSE 0 END) AS null_status_code
  FROM payload_window p
  GROUP BY p.usage_date
),
payload_undated_days AS (
  SELECT usage_date, COUNT(*) AS null_request_time FROM payload_undated GROUP BY usage_date
),
-- The days of each table: those with rows in the window and those its undated rows are
-- counted on.
usage_dates AS (
  SELECT usage_date FROM usage_days UNION SELECT usage_date FROM usage_undated_days
),
payload_dates AS (
  SELECT usage_date FROM payload_days UNION SELECT usage_date FROM payload_undated_days
),
usage_checks AS (
  SELECT k.usage_date,
    COALESCE(d.table_rows, 0) AS table_rows,
    COALESCE(d.unknown_served_entity, 0) AS unknown_served_entity,
    COALESCE(d.null_requester, 0) AS null_requester,
    COALESCE(d.unpriced_tokens, 0) AS unpriced_tokens,
    COALESCE(d.missing_request_id, 0) AS missing_request_id,
    COALESCE(d.negative_tokens, 0) AS negative_tokens,
    COALESCE(d.null_status_code, 0) AS null_status_code,
    COALESCE(w.without_payload_row, 0) AS without_payload_row,
    COALESCE(x.duplicate_request_id, 0) AS duplicate_request_id,
    COALESCE(n.null_request_time, 0) AS null_request_time
  FROM usage_dates k
  LEFT JOIN usage_days d ON d.usage_date = k.usage_date
  LEFT JOIN usage_without_payload w ON w.usage_date = k.usage_date
  LEFT JOIN usage_duplicates x ON x.usage_date = k.usage_date
  LEFT JOIN usage_undated_days n ON n.usage_date = k.usage_date
),
payload_checks AS (
  SELECT k.usage_date,
    COALESCE(d.table_rows, 0) AS table_rows,
    COALESCE(d.unparseable_response, 0) AS unparseable_response,
    COALESCE(d.not_logged_for_size, 0) AS not_logged_for_size,
    COALESCE(d.missing_request_id, 0) AS missing_request_id,
    COALESCE(d.invalid_sampling_fraction, 0) AS invalid_sampling_fraction,
    COALESCE(d.not_a_latency_sample, 0) AS not_a_latency_sample,
    COALESCE(d.null_status_code, 0) AS null_status_code,
    COALESCE(w.without_usage_row, 0) AS without_usage_row,
    COALESCE(x.duplicate_request_id, 0) AS duplicate_request_id,
    COALESCE(o.outside_usage_groups, 0) AS outside_usage_groups,
    COALESCE(n.null_request_time, 0) AS null_request_time
  FROM payload_dates k
  LEFT JOIN payload_days d ON d.usage_date = k.usage_date
  LEFT JOIN payload_without_usage w ON w.usage_date = k.usage_date
  LEFT JOIN payload_duplicates x ON x.usage_date = k.usage_date
  LEFT JOIN payload_outside_groups o ON o.usage_date = k.usage_date
  LEFT JOIN payload_undated_days n ON n.usage_date = k.usage_date
),
-- table_rows: the table's rows that day; for null_request_time, which counts rows of no day,
-- those rows as well (so the share stays within 0..1).
checks AS (
  SELECT d.usage_date, 'usage' AS table_name, c.check_name,
    CASE c.check_name
      WHEN 'unknown_served_entity' THEN d.unknown_served_entity
      WHEN 'null_requester' THEN d.null_requester
      WHEN 'unpriced_tokens' THEN d.unpriced_tokens
      WHEN 'missing_request_id' THEN d.missing_request_id
      WHEN 'without_payload_row' THEN d.without_payload_row
      WHEN 'duplicate_request_id' THEN d.duplicate_request_id
      WHEN 'negative_tokens' THEN d.negative_tokens
      WHEN 'null_status_code' THEN d.null_status_code
      WHEN 'null_request_time' THEN d.null_request_time
    END AS failed_rows,
    CASE WHEN c.check_name = 'null_request_time' THEN d.table_rows + d.null_request_time ELSE d.table_rows END
      AS table_rows
  FROM usage_checks d
  CROSS JOIN (VALUES ('unknown_served_entity'), ('null_requester'), ('unpriced_tokens'), ('missing_request_id'),
                     ('without_payload_row'), ('duplicate_request_id'), ('negative_tokens'), ('null_status_code'),
                     ('null_request_time')) AS c(check_name)
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
      WHEN 'null_status_code' THEN d.null_status_code
      WHEN 'null_request_time' THEN d.null_request_time
    END AS failed_rows,
    CASE WHEN c.check_name = 'null_request_time' THEN d.table_rows + d.null_request_time ELSE d.table_rows END
      AS table_rows
  FROM payload_checks d
  CROSS JOIN (VALUES ('unparseable_response'), ('not_logged_for_size'), ('missing_request_id'), ('without_usage_row'),
                     ('duplicate_request_id'), ('invalid_sampling_fraction'), ('not_a_latency_sample'),
                     ('outside_usage_groups'), ('null_status_code'), ('null_request_time')) AS c(check_name)
)
SELECT
  usage_date,
  table_name,
  check_name,
  CAST(failed_rows AS BIGINT) AS failed_rows,
  CAST(table_rows AS BIGINT) AS table_rows,
  CAST(failed_rows AS DOUBLE) / table_rows AS share
FROM checks
WHERE table_rows > 0
ORDER BY usage_date, table_name, check_name
