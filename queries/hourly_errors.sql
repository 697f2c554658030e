-- hourly_errors: one row per (hour, endpoint_name, entity_name) of the usage table, with
-- latency quantiles from the payload table. Column definitions: docs/OUTPUTS.md#hourly_errors.
-- Guardrail blocks: usage rows with status 400 whose request's payload row (same
-- databricks_request_id and UTC date) is a guardrail block (payload_parsed.guardrail_block).
WITH guardrail_blocks AS (
  SELECT databricks_request_id, usage_date, MIN(guardrail_block) AS guardrail_block
  FROM payload_parsed
  WHERE guardrail_block IS NOT NULL
    AND request_time >= ${window_start} AND request_time < ${window_end}
  GROUP BY databricks_request_id, usage_date
),
-- Status counts without the join: a 400 counts in http_4xx here, and the blocked ones are
-- taken out of it below.
status_counts AS (
  SELECT
    hour,
    endpoint_name,
    entity_name,
    CAST(COUNT(*) AS BIGINT) AS requests,
    CAST(SUM(CASE WHEN status_code BETWEEN 400 AND 499 AND status_code <> 429 THEN 1 ELSE 0 END) AS BIGINT)
      AS http_4xx_with_blocks,
    CAST(SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS BIGINT) AS http_429,
    CAST(SUM(CASE WHEN status_code BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS BIGINT) AS http_5xx
  FROM usage_costed
  WHERE request_time >= ${window_start} AND request_time < ${window_end}
  GROUP BY hour, endpoint_name, entity_name
),
-- Only the status-400 usage rows are joined to the blocked request ids (guardrail_blocks has
-- one row per id and date, so each row is counted once): joining every usage row would write
-- them all to disk when the join runs in buckets.
blocked_counts AS (
  SELECT
    u.hour,
    u.endpoint_name,
    u.entity_name,
    CAST(SUM(CASE WHEN g.guardrail_block = 'input' THEN 1 ELSE 0 END) AS BIGINT) AS guardrail_blocked_input,
    CAST(SUM(CASE WHEN g.guardrail_block = 'output' THEN 1 ELSE 0 END) AS BIGINT) AS guardrail_blocked_output
  FROM usage_costed u
  JOIN guardrail_blocks g
    ON g.databricks_request_id = u.databricks_request_id AND g.usage_date = u.usage_date
  WHERE u.status_code = 400
    AND u.request_time >= ${window_start} AND u.request_time < ${window_end}
  GROUP BY u.hour, u.endpoint_name, u.entity_name
),
-- Weighted nearest rank: the smallest duration whose cumulative weight reaches q times the
-- group's total weight. Equal durations are merged first so ties share one cumulative weight.
latency_points AS (
  SELECT hour, endpoint_name, entity_name, execution_duration_ms AS duration_ms, SUM(latency_weight) AS weight
  FROM payload_parsed
  WHERE latency_weight IS NOT NULL
    AND request_time >= ${window_start} AND request_time < ${window_end}
  GROUP BY hour, endpoint_name, entity_name, execution_duration_ms
),
-- The group totals by a grouping, not a window over the whole group: DataFusion computes such
-- a window by holding all its input in memory at once, outside the memory budget. Summed from
-- payload_parsed again (a few columns of scratch) rather than from latency_points, which, read
-- twice, would be grouped twice.
latency_totals AS (
  SELECT hour, endpoint_name, entity_name, SUM(latency_weight) AS total_weight
  FROM payload_parsed
  WHERE latency_weight IS NOT NULL
    AND request_time >= ${window_start} AND request_time < ${window_end}
  GROUP BY hour, endpoint_name, entity_name
),
latency_cumulative AS (
  SELECT
    p.hour,
    p.endpoint_name,
    p.entity_name,
    p.duration_ms,
    SUM(p.weight) OVER (
      PARTITION BY p.hour, p.endpoint_name, p.entity_name
      ORDER BY p.duration_ms
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS cumulative_weight,
    t.total_weight
  -- The small side first: DataFusion builds its hash table from the left input.
  FROM latency_totals t
  JOIN latency_points p
    ON p.hour = t.hour AND p.endpoint_name = t.endpoint_name AND p.entity_name = t.entity_name
),
latency AS (
  SELECT
    hour,
    endpoint_name,
    entity_name,
    MIN(CASE WHEN cumulative_weight * 100 >= total_weight * 50 THEN duration_ms END) AS p50_latency_ms,
    MIN(CASE WHEN cumulative_weight * 100 >= total_weight * 95 THEN duration_ms END) AS p95_latency_ms,
    MIN(CASE WHEN cumulative_weight * 100 >= total_weight * 99 THEN duration_ms END) AS p99_latency_ms
  FROM latency_cumulative
  GROUP BY hour, endpoint_name, entity_name
)
SELECT
  CAST(s.hour AS DATE) AS usage_date,
  s.hour,
  s.endpoint_name,
  s.entity_name,
  s.requests,
  CAST(s.http_4xx_with_blocks - COALESCE(b.guardrail_blocked_input, 0) - COALESCE(b.guardrail_blocked_output, 0)
    AS BIGINT) AS http_4xx,
  s.http_429,
  s.http_5xx,
  -- CASE rather than COALESCE keeps the columns nullable, as the tables already written have them.
  CASE WHEN b.hour IS NULL THEN CAST(0 AS BIGINT) ELSE b.guardrail_blocked_input END AS guardrail_blocked_input,
  CASE WHEN b.hour IS NULL THEN CAST(0 AS BIGINT) ELSE b.guardrail_blocked_output END AS guardrail_blocked_output,
  CAST(s.http_4xx_with_blocks + s.http_429 + s.http_5xx AS DOUBLE) / s.requests AS error_rate,
  CAST(l.p50_latency_ms AS BIGINT) AS p50_latency_ms,
  CAST(l.p95_latency_ms AS BIGINT) AS p95_latency_ms,
  CAST(l.p99_latency_ms AS BIGINT) AS p99_latency_ms
FROM status_counts s
LEFT JOIN blocked_counts b
  ON b.hour = s.hour AND b.endpoint_name = s.endpoint_name AND b.entity_name = s.entity_name
LEFT JOIN latency l
  ON s.hour = l.hour
  AND s.endpoint_name = l.endpoint_name
  AND s.entity_name = l.entity_name
ORDER BY s.hour, s.endpoint_name, s.entity_name
