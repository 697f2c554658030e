"""The nightly numbers written by hand in DuckDB SQL, the way a user who knows the tables would.

Unlike duckdb_nightly.py it never reads a response body: token counts come from the usage table
(so every token is billed at the input or output price: no cache or reasoning categories),
latency from the payload table's small columns. It computes, for the UTC dates FROM..TO:
daily_spend, hourly_errors (exact sampling-weighted p50/p95/p99), the per-minute demand
statistics of the rate-limit recommendations (as of TO, 14-day lookback), the 429 alerts
(alerts.sql's rate_limited_share rule with the default thresholds: per endpoint and hour and per
endpoint, requester and hour, at least 20 requests, 5 HTTP 429s and a 5% share) and, when the
data set has a `trace_logs` table, trace coverage (successful requests with a trace, orphan
traces). Results go to Parquet files; the check totals to stdout as JSON.

    duckdb_by_hand.py DATA OUT FROM TO MEMORY_MIB
"""
import json
import os
import sys

import duckdb

from by_hand_checks import by_hand_totals
from duckdb_tables import table_reader

data, out, first, last, memory_mib = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
con = duckdb.connect()
con.execute(f"SET memory_limit = '{memory_mib}MB'; SET threads = 2; SET TimeZone = 'UTC'")
source = table_reader(con, data)

usage, payload, served = source("endpoint_usage"), source("gateway_payload"), source("served_entities")
has_traces = os.path.isdir(f"{data}/trace_logs")
start, end = f"TIMESTAMPTZ '{first} 00:00:00+00'", f"TIMESTAMPTZ '{last} 00:00:00+00' + INTERVAL 1 DAY"
lookback_start = f"least({start}, TIMESTAMPTZ '{last} 00:00:00+00' - INTERVAL 13 DAY)"

con.execute(f"""
CREATE TEMP TABLE entities AS
SELECT served_entity_id, endpoint_name, entity_name FROM (
  SELECT served_entity_id, endpoint_name, entity_name,
         row_number() OVER (PARTITION BY served_entity_id
                            ORDER BY change_time DESC NULLS LAST, endpoint_name DESC NULLS LAST,
                                     entity_name DESC NULLS LAST) AS rn
  FROM {served} WHERE served_entity_id IS NOT NULL)
WHERE rn = 1;

CREATE TEMP TABLE teams AS SELECT * FROM read_csv('{data}/teams.csv', header = true, all_varchar = true);

-- Input and output prices in picodollars per token, by period.
CREATE TEMP TABLE prices AS
SELECT entity_name, effective_from,
       lead(effective_from) OVER (PARTITION BY entity_name ORDER BY effective_from) AS effective_until,
       round(input_usd_per_million::DECIMAL(18, 6) * 1000000)::BIGINT AS p_in,
       round(output_usd_per_million::DECIMAL(18, 6) * 1000000)::BIGINT AS p_out
FROM (SELECT entity_name, input_usd_per_million, output_usd_per_million,
             CASE WHEN length(effective_from) = 10 THEN (effective_from || ' 00:00:00+00')::TIMESTAMPTZ
                  ELSE effective_from::TIMESTAMPTZ END AS effective_from
      FROM read_csv('{data}/prices.csv', header = true, all_varchar = true));

CREATE TEMP TABLE requests AS
SELECT u.databricks_request_id, u.request_time, u.status_code,
       coalesce(e.endpoint_name, '(unknown)') AS endpoint_name,
       coalesce(e.entity_name, '(unknown)') AS entity_name,
       coalesce(u.requester, '(unknown)') AS requester,
       CASE WHEN map_extract(u.usage_context, 'team')[1] <> '' THEN map_extract(u.usage_context, 'team')[1]
            WHEN t.team <> '' THEN t.team ELSE 'unattributed' END AS team,
       coalesce(u.input_token_count, 0)::BIGINT AS input_tokens,
       coalesce(u.output_token_count, 0)::BIGINT AS output_tokens,
       p.p_in, p.p_out
FROM {usage} u
LEFT JOIN entities e ON u.served_entity_id = e.served_entity_id
LEFT JOIN teams t ON u.requester = t.principal
LEFT JOIN prices p ON p.entity_name = e.entity_name AND p.effective_from <= u.request_time
                   AND (p.effective_until IS NULL OR u.request_time < p.effective_until)
WHERE u.request_time >= {lookback_start} AND u.request_time < {end};

COPY (
  SELECT request_time::DATE AS usage_date, endpoint_name, entity_name, requester, team,
         count(*) AS requests,
         count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS succeeded,
         count(*) FILTER (WHERE status_code = 429) AS rate_limited,
         count(*) FILTER (WHERE status_code >= 400 AND status_code <> 429) AS failed,
         sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
         coalesce(sum(input_tokens::HUGEINT * p_in + output_tokens::HUGEINT * p_out), 0)::DECIMAL(38, 0)
           AS cost_picodollars
  FROM requests WHERE request_time >= {start}
  GROUP BY ALL ORDER BY ALL
) TO '{out}/daily_spend.parquet';

COPY (
  WITH counts AS (
    SELECT date_trunc('hour', request_time) AS hour, endpoint_name, entity_name, count(*) AS requests,
           count(*) FILTER (WHERE status_code BETWEEN 400 AND 499 AND status_code <> 429) AS http_4xx,
           count(*) FILTER (WHERE status_code = 429) AS http_429,
           count(*) FILTER (WHERE status_code BETWEEN 500 AND 599) AS http_5xx
    FROM requests WHERE request_time >= {start}
    GROUP BY ALL),
  points AS (
    SELECT date_trunc('hour', p.request_time) AS hour, coalesce(e.endpoint_name, '(unknown)') AS endpoint_name,
           coalesce(e.entity_name, '(unknown)') AS entity_name, p.execution_duration_ms AS duration_ms,
           sum(round(1000000 / p.sampling_fraction)::HUGEINT) AS weight
    FROM {payload} p LEFT JOIN entities e ON p.served_entity_id = e.served_entity_id
    WHERE p.request_time >= {start} AND p.request_time < {end} AND p.status_code BETWEEN 200 AND 299
      AND p.execution_duration_ms >= 0 AND p.sampling_fraction >= 0.000000001 AND p.sampling_fraction <= 1
    GROUP BY ALL),
  cumulative AS (
    SELECT *, sum(weight) OVER (PARTITION BY hour, endpoint_name, entity_name ORDER BY duration_ms) AS cum,
              sum(weight) OVER (PARTITION BY hour, endpoint_name, entity_name) AS total
    FROM points),
  latency AS (
    SELECT hour, endpoint_name, entity_name,
           min(duration_ms) FILTER (WHERE cum * 100 >= total * 50) AS p50_latency_ms,
           min(duration_ms) FILTER (WHERE cum * 100 >= total * 95) AS p95_latency_ms,
           min(duration_ms) FILTER (WHERE cum * 100 >= total * 99) AS p99_latency_ms
    FROM cumulative GROUP BY ALL)
  SELECT c.*, (http_4xx + http_429 + http_5xx) / requests AS error_rate,
         l.p50_latency_ms, l.p95_latency_ms, l.p99_latency_ms
  FROM counts c LEFT JOIN latency l USING (hour, endpoint_name, entity_name)
  ORDER BY ALL
) TO '{out}/hourly_errors.parquet';

COPY (
  WITH minutes AS (
    SELECT endpoint_name, requester, date_trunc('minute', request_time) AS minute, count(*) AS calls,
           sum(input_tokens + output_tokens) AS tokens, count(*) FILTER (WHERE status_code = 429) AS rate_limited
    FROM requests GROUP BY ALL
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
  FROM ranked GROUP BY ALL ORDER BY ALL
) TO '{out}/demand.parquet';

-- 429 alerts: the groups in which alerts.sql's rate_limited_share rule fires (default thresholds).
COPY (
  WITH hours AS (
    SELECT endpoint_name, 'endpoint' AS scope, endpoint_name AS scope_value,
           date_trunc('hour', request_time) AS hour, count(*) AS requests,
           count(*) FILTER (WHERE status_code = 429) AS rate_limited
    FROM requests WHERE request_time >= {start} GROUP BY ALL
    UNION ALL
    SELECT endpoint_name, 'requester', requester, date_trunc('hour', request_time), count(*),
           count(*) FILTER (WHERE status_code = 429)
    FROM requests WHERE request_time >= {start} GROUP BY ALL)
  SELECT *, rate_limited / requests AS observed,
         CASE WHEN rate_limited * 1000000 >= requests * 200000 THEN 'critical' ELSE 'warning' END AS severity
  FROM hours
  WHERE requests >= 20 AND rate_limited >= 5 AND rate_limited * 1000000 >= requests * 50000
  ORDER BY ALL
) TO '{out}/rate_limited_alerts.parquet';
""")

if has_traces:
    traces = source("trace_logs")
    con.execute(f"""
    COPY (
      WITH traced_ids AS (
        SELECT DISTINCT client_request_id FROM {traces}
        WHERE request_time >= {start} - INTERVAL 1 DAY AND request_time < {end} + INTERVAL 1 DAY
          AND client_request_id IS NOT NULL),
      coverage AS (
        SELECT r.request_time::DATE AS usage_date, r.endpoint_name, count(*) AS requests,
               count(t.client_request_id) AS traced, 0 AS orphan_traces
        FROM requests r LEFT JOIN traced_ids t ON t.client_request_id = r.databricks_request_id
        WHERE r.request_time >= {start} AND r.status_code BETWEEN 200 AND 299
        GROUP BY ALL),
      gateway_ids AS (
        SELECT DISTINCT databricks_request_id FROM {usage}
        WHERE request_time >= {start} - INTERVAL 1 DAY AND request_time < {end} + INTERVAL 1 DAY
          AND databricks_request_id IS NOT NULL),
      orphans AS (
        SELECT t.request_time::DATE AS usage_date,
               coalesce(map_extract(t.trace_metadata, 'mlflow.databricks.modelServingEndpointName')[1], '(none)')
                 AS endpoint_name,
               0 AS requests, 0 AS traced, count(*) AS orphan_traces
        FROM {traces} t ANTI JOIN gateway_ids g ON g.databricks_request_id = t.client_request_id
        WHERE t.request_time >= {start} AND t.request_time < {end}
        GROUP BY ALL)
      SELECT usage_date, endpoint_name, sum(requests) AS requests, sum(traced) AS traced,
             sum(traced) / nullif(sum(requests), 0) AS coverage, sum(orphan_traces) AS orphan_traces
      FROM (FROM coverage UNION ALL FROM orphans)
      GROUP BY ALL ORDER BY ALL
    ) TO '{out}/trace_coverage.parquet'
    """)

print(json.dumps(by_hand_totals(con, out, has_traces)))
