-- ai_gateway_hourly_errors: hourly_errors for the new AI Gateway: one row per (hour,
-- endpoint_name, entity_name) of gateway_usage. Column definitions:
-- docs/OUTPUTS.md#ai_gateway_hourly_errors. Latencies are exact nearest-rank quantiles (the
-- smallest value whose rank reaches q of the group) of the usage table's own latency_ms and
-- time_to_first_byte_ms over the group's 2xx invocations. Guardrail blocks: invocations with
-- status 400 whose request has a payload row (gateway_payload_source, same request_id, status
-- 400, in the window) whose response says input_guardrail_triggered or
-- output_guardrail_triggered (input when both do); they are not in http_4xx.
WITH blocks AS (
  SELECT
    request_id,
    MIN(CASE
      WHEN response LIKE '%input_guardrail_triggered%' THEN 'input'
      WHEN response LIKE '%output_guardrail_triggered%' THEN 'output'
    END) AS block
  FROM gateway_payload_source
  WHERE status_code = 400
    AND event_time >= ${window_start} AND event_time < ${window_end}
    AND (response LIKE '%input_guardrail_triggered%' OR response LIKE '%output_guardrail_triggered%')
  GROUP BY request_id
),
rows AS (
  SELECT
    u.hour,
    u.endpoint_name,
    u.model AS entity_name,
    u.request_id,
    u.status_code,
    CASE WHEN u.status_code = 400 THEN b.block END AS block
  FROM gateway_usage u
  LEFT JOIN blocks b
    ON b.request_id = u.request_id
),
counts AS (
  SELECT
    hour,
    endpoint_name,
    entity_name,
    CAST(COUNT(DISTINCT request_id) AS BIGINT) AS requests,
    CAST(COUNT(*) AS BIGINT) AS invocations,
    CAST(SUM(CASE WHEN status_code BETWEEN 400 AND 499 AND status_code <> 429 AND block IS NULL THEN 1 ELSE 0 END)
      AS BIGINT) AS http_4xx,
    CAST(SUM(CASE WHEN status_code = 429 THEN 1 ELSE 0 END) AS BIGINT) AS http_429,
    CAST(SUM(CASE WHEN status_code BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS BIGINT) AS http_5xx,
    CAST(SUM(CASE WHEN block = 'input' THEN 1 ELSE 0 END) AS BIGINT) AS guardrail_blocked_input,
    CAST(SUM(CASE WHEN block = 'output' THEN 1 ELSE 0 END) AS BIGINT) AS guardrail_blocked_output
  FROM rows
  GROUP BY hour, endpoint_name, entity_name
),
-- Nearest rank: the smallest value whose rank reaches q of the group's 2xx rows. The group
-- sizes are a grouping joined back, not COUNT(*) OVER the whole group: DataFusion computes such
-- a window by holding all its input in memory at once. A 2xx row is never a guardrail block, so
-- these read gateway_usage, not rows (which joins the blocks, read from the payload bodies).
sample_sizes AS (
  SELECT
    hour,
    endpoint_name,
    model AS entity_name,
    SUM(CASE WHEN latency_ms IS NOT NULL THEN 1 ELSE 0 END) AS latency_samples,
    SUM(CASE WHEN time_to_first_byte_ms IS NOT NULL THEN 1 ELSE 0 END) AS ttfb_samples
  FROM gateway_usage
  WHERE status_code BETWEEN 200 AND 299
  GROUP BY hour, endpoint_name, model
),
sample_ranks AS (
  SELECT
    'latency' AS measure, hour, endpoint_name, model AS entity_name, latency_ms AS value,
    ROW_NUMBER() OVER (PARTITION BY hour, endpoint_name, model ORDER BY latency_ms) AS rank_in_group
  FROM gateway_usage
  WHERE status_code BETWEEN 200 AND 299 AND latency_ms IS NOT NULL
  UNION ALL
  SELECT
    'ttfb' AS measure, hour, endpoint_name, model AS entity_name, time_to_first_byte_ms AS value,
    ROW_NUMBER() OVER (PARTITION BY hour, endpoint_name, model ORDER BY time_to_first_byte_ms) AS rank_in_group
  FROM gateway_usage
  WHERE status_code BETWEEN 200 AND 299 AND time_to_first_byte_ms IS NOT NULL
),
quantiles AS (
  SELECT
    measure, hour, endpoint_name, entity_name,
    MIN(CASE WHEN rank_in_group * 100 >= group_size * 50 THEN value END) AS p50,
    MIN(CASE WHEN rank_in_group * 100 >= group_size * 95 THEN value END) AS p95,
    MIN(CASE WHEN rank_in_group * 100 >= group_size * 99 THEN value END) AS p99
  FROM (
    SELECT
      r.*,
      CASE WHEN r.measure = 'latency' THEN s.latency_samples ELSE s.ttfb_samples END AS group_size
    -- The small side first: DataFusion builds its hash table from the left input. Every key
    -- is non-NULL (see gateway_usage.sql).
    FROM sample_sizes s
    JOIN sample_ranks r
      ON r.hour = s.hour AND r.endpoint_name = s.endpoint_name AND r.entity_name = s.entity_name
  ) ranked
  GROUP BY measure, hour, endpoint_name, entity_name
),
latency AS (
  SELECT hour, endpoint_name, entity_name, p50, p95, p99 FROM quantiles WHERE measure = 'latency'
),
ttfb AS (
  SELECT hour, endpoint_name, entity_name, p50, p95, p99 FROM quantiles WHERE measure = 'ttfb'
)
SELECT
  CAST(c.hour AS DATE) AS usage_date,
  c.hour,
  c.endpoint_name,
  c.entity_name,
  c.requests,
  c.invocations,
  c.http_4xx,
  c.http_429,
  c.http_5xx,
  c.guardrail_blocked_input,
  c.guardrail_blocked_output,
  CAST(c.http_4xx + c.http_429 + c.http_5xx + c.guardrail_blocked_input + c.guardrail_blocked_output AS DOUBLE)
    / c.invocations AS error_rate,
  CAST(l.p50 AS BIGINT) AS p50_latency_ms,
  CAST(l.p95 AS BIGINT) AS p95_latency_ms,
  CAST(l.p99 AS BIGINT) AS p99_latency_ms,
  CAST(t.p50 AS BIGINT) AS p50_ttfb_ms,
  CAST(t.p95 AS BIGINT) AS p95_ttfb_ms,
  CAST(t.p99 AS BIGINT) AS p99_ttfb_ms
FROM counts c
LEFT JOIN latency l
  ON l.hour = c.hour AND l.endpoint_name = c.endpoint_name AND l.entity_name = c.entity_name
LEFT JOIN ttfb t
  ON t.hour = c.hour AND t.endpoint_name = c.endpoint_name AND t.entity_name = c.entity_name
ORDER BY c.hour, c.endpoint_name, c.entity_name
