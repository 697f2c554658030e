-- The nightly numbers written by hand in DataFusion SQL, run by benches/peers/datafusion_by_hand.py
-- through `gateway-analytics query` (the job's own DataFusion session: the same engine, memory
-- budget and readers as `run`). The same computation as duckdb_by_hand.py, statement for
-- statement, in DataFusion's dialect: token counts from the usage table (no cache or reasoning
-- categories), latency from the payload's small columns, no response body read. `prices` and
-- `teams` are the job's reference tables as `query` loads them (per-token decimal prices).
-- The statements before the first `-- output:` line are run before each output's query;
-- ${start}, ${end} and ${lookback_start} are timestamps the script fills in.

CREATE TABLE entities AS
SELECT served_entity_id, endpoint_name, entity_name FROM (
  SELECT served_entity_id, endpoint_name, entity_name,
         row_number() OVER (PARTITION BY served_entity_id
                            ORDER BY change_time DESC NULLS LAST, endpoint_name DESC NULLS LAST,
                                     entity_name DESC NULLS LAST) AS rn
  FROM served_entities WHERE served_entity_id IS NOT NULL) s
WHERE rn = 1;

CREATE TABLE price_periods AS
SELECT entity_name, effective_from,
       lead(effective_from) OVER (PARTITION BY entity_name ORDER BY effective_from) AS effective_until,
       CAST(input_usd_per_token * 1000000000000 AS BIGINT) AS p_in,
       CAST(output_usd_per_token * 1000000000000 AS BIGINT) AS p_out
FROM prices;

CREATE VIEW requests AS
SELECT u.databricks_request_id, u.request_time, u.status_code,
       coalesce(e.endpoint_name, '(unknown)') AS endpoint_name,
       coalesce(e.entity_name, '(unknown)') AS entity_name,
       coalesce(u.requester, '(unknown)') AS requester,
       CASE WHEN map_extract(u.usage_context, 'team')[1] <> '' THEN map_extract(u.usage_context, 'team')[1]
            WHEN t.team <> '' THEN t.team ELSE 'unattributed' END AS team,
       coalesce(u.input_token_count, 0) AS input_tokens,
       coalesce(u.output_token_count, 0) AS output_tokens,
       p.p_in, p.p_out
FROM usage u
LEFT JOIN entities e ON u.served_entity_id = e.served_entity_id
LEFT JOIN teams t ON u.requester = t.principal
LEFT JOIN price_periods p ON p.entity_name = e.entity_name AND p.effective_from <= u.request_time
                   AND (p.effective_until IS NULL OR u.request_time < p.effective_until)
WHERE u.request_time >= ${lookback_start} AND u.request_time < ${end};

-- output: daily_spend
SELECT CAST(request_time AS DATE) AS usage_date, endpoint_name, entity_name, requester, team,
       count(*) AS requests,
       count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS succeeded,
       count(*) FILTER (WHERE status_code = 429) AS rate_limited,
       count(*) FILTER (WHERE status_code >= 400 AND status_code <> 429) AS failed,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       coalesce(sum(CAST(input_tokens AS DECIMAL(38, 0)) * p_in + CAST(output_tokens AS DECIMAL(38, 0)) * p_out), 0)
         AS cost_picodollars
FROM requests WHERE request_time >= ${start}
GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5;

-- output: hourly_errors
WITH counts AS (
  SELECT date_trunc('hour', request_time) AS hour, endpoint_name, entity_name, count(*) AS requests,
         count(*) FILTER (WHERE status_code BETWEEN 400 AND 499 AND status_code <> 429) AS http_4xx,
         count(*) FILTER (WHERE status_code = 429) AS http_429,
         count(*) FILTER (WHERE status_code BETWEEN 500 AND 599) AS http_5xx
  FROM requests WHERE request_time >= ${start}
  GROUP BY 1, 2, 3),
points AS (
  SELECT date_trunc('hour', p.request_time) AS hour, coalesce(e.endpoint_name, '(unknown)') AS endpoint_name,
         coalesce(e.entity_name, '(unknown)') AS entity_name, p.execution_duration_ms AS duration_ms,
         sum(CAST(round(1000000 / p.sampling_fraction) AS DECIMAL(38, 0))) AS weight
  FROM payload p LEFT JOIN entities e ON p.served_entity_id = e.served_entity_id
  WHERE p.request_time >= ${start} AND p.request_time < ${end} AND p.status_code BETWEEN 200 AND 299
    AND p.execution_duration_ms >= 0 AND p.sampling_fraction >= 0.000000001 AND p.sampling_fraction <= 1
  GROUP BY 1, 2, 3, 4),
cumulative AS (
  SELECT *, sum(weight) OVER (PARTITION BY hour, endpoint_name, entity_name ORDER BY duration_ms) AS cum,
            sum(weight) OVER (PARTITION BY hour, endpoint_name, entity_name) AS total
  FROM points),
latency AS (
  SELECT hour, endpoint_name, entity_name,
         min(duration_ms) FILTER (WHERE cum * 100 >= total * 50) AS p50_latency_ms,
         min(duration_ms) FILTER (WHERE cum * 100 >= total * 95) AS p95_latency_ms,
         min(duration_ms) FILTER (WHERE cum * 100 >= total * 99) AS p99_latency_ms
  FROM cumulative GROUP BY 1, 2, 3)
SELECT c.hour, c.endpoint_name, c.entity_name, c.requests, c.http_4xx, c.http_429, c.http_5xx,
       CAST(c.http_4xx + c.http_429 + c.http_5xx AS DOUBLE) / c.requests AS error_rate,
       l.p50_latency_ms, l.p95_latency_ms, l.p99_latency_ms
FROM counts c LEFT JOIN latency l
  ON l.hour = c.hour AND l.endpoint_name = c.endpoint_name AND l.entity_name = c.entity_name
ORDER BY 1, 2, 3;

-- output: demand
WITH minutes AS (
  SELECT endpoint_name, requester, date_trunc('minute', request_time) AS minute, count(*) AS calls,
         sum(input_tokens + output_tokens) AS tokens, count(*) FILTER (WHERE status_code = 429) AS rate_limited
  FROM requests GROUP BY 1, 2, 3
  UNION ALL
  SELECT endpoint_name, '(endpoint)', date_trunc('minute', request_time), count(*),
         sum(input_tokens + output_tokens), count(*) FILTER (WHERE status_code = 429)
  FROM requests GROUP BY endpoint_name, date_trunc('minute', request_time)),
ranked AS (
  SELECT *, row_number() OVER (PARTITION BY endpoint_name, requester ORDER BY calls) AS calls_rank,
            row_number() OVER (PARTITION BY endpoint_name, requester ORDER BY tokens) AS tokens_rank,
            count(*) OVER (PARTITION BY endpoint_name, requester) AS active_minutes
  FROM minutes)
SELECT endpoint_name, requester, max(active_minutes) AS active_minutes, sum(calls) AS calls,
       sum(rate_limited) AS rate_limited,
       min(calls) FILTER (WHERE calls_rank * 100 >= active_minutes * 50) AS p50_calls_per_minute,
       min(calls) FILTER (WHERE calls_rank * 100 >= active_minutes * 95) AS p95_calls_per_minute,
       min(calls) FILTER (WHERE calls_rank * 100 >= active_minutes * 99) AS p99_calls_per_minute,
       max(calls) AS peak_calls_per_minute,
       min(tokens) FILTER (WHERE tokens_rank * 100 >= active_minutes * 99) AS p99_tokens_per_minute,
       max(tokens) AS peak_tokens_per_minute
FROM ranked GROUP BY 1, 2 ORDER BY 1, 2;

-- output: rate_limited_alerts
WITH hours AS (
  SELECT endpoint_name, 'endpoint' AS scope, endpoint_name AS scope_value,
         date_trunc('hour', request_time) AS hour, count(*) AS requests,
         count(*) FILTER (WHERE status_code = 429) AS rate_limited
  FROM requests WHERE request_time >= ${start} GROUP BY 1, 2, 3, 4
  UNION ALL
  SELECT endpoint_name, 'requester', requester, date_trunc('hour', request_time), count(*),
         count(*) FILTER (WHERE status_code = 429)
  FROM requests WHERE request_time >= ${start} GROUP BY 1, 2, 3, 4)
SELECT *, CAST(rate_limited AS DOUBLE) / requests AS observed,
       CASE WHEN rate_limited * 1000000 >= requests * 200000 THEN 'critical' ELSE 'warning' END AS severity
FROM hours
WHERE requests >= 20 AND rate_limited >= 5 AND rate_limited * 1000000 >= requests * 50000
ORDER BY 1, 2, 3, 4;

-- output: trace_coverage
WITH traced_ids AS (
  SELECT DISTINCT client_request_id FROM traces
  WHERE request_time >= ${start} - INTERVAL '1' DAY AND request_time < ${end} + INTERVAL '1' DAY
    AND client_request_id IS NOT NULL),
coverage AS (
  SELECT CAST(r.request_time AS DATE) AS usage_date, r.endpoint_name, count(*) AS requests,
         count(t.client_request_id) AS traced, 0 AS orphan_traces
  FROM requests r LEFT JOIN traced_ids t ON t.client_request_id = r.databricks_request_id
  WHERE r.request_time >= ${start} AND r.status_code BETWEEN 200 AND 299
  GROUP BY 1, 2),
gateway_ids AS (
  SELECT DISTINCT databricks_request_id FROM usage
  WHERE request_time >= ${start} - INTERVAL '1' DAY AND request_time < ${end} + INTERVAL '1' DAY
    AND databricks_request_id IS NOT NULL),
orphans AS (
  SELECT CAST(t.request_time AS DATE) AS usage_date,
         coalesce(map_extract(t.trace_metadata, 'mlflow.databricks.modelServingEndpointName')[1], '(none)')
           AS endpoint_name,
         0 AS requests, 0 AS traced, count(*) AS orphan_traces
  FROM traces t LEFT ANTI JOIN gateway_ids g ON g.databricks_request_id = t.client_request_id
  WHERE t.request_time >= ${start} AND t.request_time < ${end}
  GROUP BY 1, 2)
SELECT usage_date, endpoint_name, sum(requests) AS requests, sum(traced) AS traced,
       CAST(sum(traced) AS DOUBLE) / nullif(sum(requests), 0) AS coverage, sum(orphan_traces) AS orphan_traces
FROM (SELECT * FROM coverage UNION ALL SELECT * FROM orphans) u
GROUP BY 1, 2 ORDER BY 1, 2;
