-- fallbacks: one row per (hour, endpoint_name, destination) of the new AI Gateway's routed
-- model-service invocations (gateway_usage, MCP services excluded). Column definitions:
-- docs/OUTPUTS.md#fallbacks.
-- An invocation's attempts are its routing_information.attempts in order (gateway_attempts);
-- an invocation without attempts (NULL or empty: not routed) counts as one attempt at its own
-- destination with its own status and latency. The invocation's status_code is its final
-- outcome. ok = status 200..299. The alert thresholds come from `[ai_gateway]` (the one-row
-- table ai_gateway_settings).
WITH all_attempts AS (
  SELECT usage_date, hour, endpoint_name, request_id, invocation_id, attempt_count, final_status,
    attempt_number, COALESCE(destination, '(none)') AS destination, attempt_status, attempt_latency_ms
  FROM gateway_attempts
  UNION ALL
  SELECT usage_date, hour, endpoint_name, request_id, invocation_id, CAST(1 AS BIGINT) AS attempt_count,
    CAST(status_code AS BIGINT) AS final_status, CAST(1 AS BIGINT) AS attempt_number, destination,
    CAST(status_code AS BIGINT) AS attempt_status, CAST(latency_ms AS BIGINT) AS attempt_latency_ms
  FROM gateway_usage
  WHERE attempt_count = 0 AND service_type <> 'MCP_SERVICE'
),
-- One row per invocation: where it went first and last, and what the failed tries cost.
invocations AS (
  SELECT
    usage_date,
    hour,
    endpoint_name,
    request_id,
    invocation_id,
    MAX(attempt_count) AS attempt_count,
    MAX(final_status) AS final_status,
    MAX(CASE WHEN attempt_number = 1 THEN destination END) AS first_destination,
    MAX(CASE WHEN attempt_number = 1 THEN attempt_status END) AS first_status,
    MAX(CASE WHEN attempt_number = attempt_count THEN destination END) AS last_destination,
    SUM(CASE WHEN attempt_number < attempt_count THEN attempt_latency_ms ELSE 0 END) AS added_latency_ms,
    SUM(CASE WHEN attempt_number < attempt_count AND attempt_latency_ms IS NULL THEN 1 ELSE 0 END)
      AS unknown_latencies
  FROM all_attempts
  GROUP BY usage_date, hour, endpoint_name, request_id, invocation_id
),
outcomes AS (
  SELECT
    i.*,
    attempt_count >= 2 AND NOT COALESCE(first_status BETWEEN 200 AND 299, false)
      AND COALESCE(final_status BETWEEN 200 AND 299, false) AS rescued,
    attempt_count >= 2 AND NOT COALESCE(final_status BETWEEN 200 AND 299, false) AS failed_after_fallbacks,
    COALESCE(final_status BETWEEN 200 AND 299, false) AS served
  FROM invocations i
),
attempt_counts AS (
  SELECT
    usage_date, hour, endpoint_name, destination,
    CAST(COUNT(*) AS BIGINT) AS attempts,
    CAST(SUM(CASE WHEN COALESCE(attempt_status BETWEEN 200 AND 299, false) THEN 0 ELSE 1 END) AS BIGINT)
      AS failed_attempts,
    CAST(SUM(CASE WHEN attempt_status = 429 THEN 1 ELSE 0 END) AS BIGINT) AS failed_429,
    CAST(SUM(CASE WHEN attempt_status BETWEEN 500 AND 599 THEN 1 ELSE 0 END) AS BIGINT) AS failed_5xx
  FROM all_attempts
  GROUP BY usage_date, hour, endpoint_name, destination
),
first_counts AS (
  SELECT
    hour, endpoint_name, first_destination AS destination,
    CAST(COUNT(*) AS BIGINT) AS first_attempts,
    CAST(SUM(CASE WHEN rescued THEN 1 ELSE 0 END) AS BIGINT) AS rescued,
    CAST(SUM(CASE WHEN failed_after_fallbacks THEN 1 ELSE 0 END) AS BIGINT) AS failed_after_fallbacks,
    -- The rescue latency quantiles' group sizes.
    SUM(CASE WHEN rescued AND unknown_latencies = 0 THEN 1 ELSE 0 END) AS rescued_with_latencies
  FROM outcomes
  GROUP BY hour, endpoint_name, first_destination
),
served_counts AS (
  SELECT hour, endpoint_name, last_destination AS destination, CAST(COUNT(*) AS BIGINT) AS served
  FROM outcomes
  WHERE served
  GROUP BY hour, endpoint_name, last_destination
),
served_totals AS (
  SELECT hour, endpoint_name, CAST(COUNT(*) AS BIGINT) AS served_total
  FROM outcomes
  WHERE served
  GROUP BY hour, endpoint_name
),
-- Nearest rank: the smallest added latency whose rank reaches q of the rescued invocations
-- (those whose failed attempts all report a latency). The group sizes come from first_counts
-- joined back rather than COUNT(*) OVER the whole group (see ai_gateway_hourly_errors.sql); a
-- group with a NULL destination matches no first_counts row here, nor attempt_counts below.
rescue_ranks AS (
  SELECT
    hour, endpoint_name, first_destination AS destination, added_latency_ms,
    ROW_NUMBER() OVER (PARTITION BY hour, endpoint_name, first_destination ORDER BY added_latency_ms) AS rank_in_group
  FROM outcomes
  WHERE rescued AND unknown_latencies = 0
),
rescue_latency AS (
  SELECT
    r.hour, r.endpoint_name, r.destination,
    MIN(CASE WHEN r.rank_in_group * 100 >= f.rescued_with_latencies * 50 THEN r.added_latency_ms END) AS p50,
    MIN(CASE WHEN r.rank_in_group * 100 >= f.rescued_with_latencies * 95 THEN r.added_latency_ms END) AS p95
  FROM first_counts f
  JOIN rescue_ranks r
    ON r.hour = f.hour AND r.endpoint_name = f.endpoint_name AND r.destination = f.destination
  GROUP BY r.hour, r.endpoint_name, r.destination
)
SELECT
  a.usage_date,
  a.hour,
  a.endpoint_name,
  a.destination,
  a.attempts,
  a.failed_attempts,
  a.failed_429,
  a.failed_5xx,
  a.failed_attempts - a.failed_429 - a.failed_5xx AS failed_other,
  COALESCE(f.first_attempts, 0) AS first_attempts,
  COALESCE(f.rescued, 0) AS rescued,
  COALESCE(f.failed_after_fallbacks, 0) AS failed_after_fallbacks,
  CAST(r.p50 AS BIGINT) AS fallback_added_p50_ms,
  CAST(r.p95 AS BIGINT) AS fallback_added_p95_ms,
  COALESCE(s.served, 0) AS served,
  CASE WHEN t.served_total > 0 THEN CAST(COALESCE(s.served, 0) AS DOUBLE) / t.served_total END AS served_share,
  CAST(a.failed_attempts AS DOUBLE) / a.attempts AS failure_share,
  CASE WHEN f.first_attempts > 0 THEN CAST(f.rescued AS DOUBLE) / f.first_attempts END AS rescue_share,
  a.attempts >= k.fallback_min_attempts
    AND a.failed_attempts >= a.attempts * k.fallback_failure_share AS failure_alert,
  COALESCE(f.first_attempts >= k.fallback_min_attempts
    AND f.rescued >= f.first_attempts * k.fallback_rescue_share, false) AS rescue_alert
FROM attempt_counts a
CROSS JOIN ai_gateway_settings k
LEFT JOIN first_counts f
  ON f.hour = a.hour AND f.endpoint_name = a.endpoint_name AND f.destination = a.destination
LEFT JOIN served_counts s
  ON s.hour = a.hour AND s.endpoint_name = a.endpoint_name AND s.destination = a.destination
LEFT JOIN served_totals t
  ON t.hour = a.hour AND t.endpoint_name = a.endpoint_name
LEFT JOIN rescue_latency r
  ON r.hour = a.hour AND r.endpoint_name = a.endpoint_name AND r.destination = a.destination
ORDER BY a.hour, a.endpoint_name, a.destination
