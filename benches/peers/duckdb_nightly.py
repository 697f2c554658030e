"""The nightly computation written for DuckDB, as a competent DuckDB user would write it.

daily_spend (token categories from the payload bodies, exact cost), hourly_errors (exact
sampling-weighted latency quantiles) and the per-minute demand statistics of the rate-limit
recommendations (as of TO, 14-day lookback), over the Delta tables of a generated data set, for
the UTC dates FROM..TO. Results go to
Parquet files; the check totals to stdout as JSON (the harness compares them with ours).

DuckDB's `delta` extension is downloaded from extensions.duckdb.org when first used; where that
host is unreachable the script reads the Parquet files of the table's current version, listed by
the `deltalake` package: the same rows for tables without deletion vectors (benchmark data has
none).

    duckdb_nightly.py DATA OUT FROM TO MEMORY_MIB
"""
import json
import sys

import duckdb

from duckdb_tables import table_reader

data, out, first, last, memory_mib = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
con = duckdb.connect()
con.execute(f"SET memory_limit = '{memory_mib}MB'; SET threads = 2; SET TimeZone = 'UTC'")
source = table_reader(con, data)

usage, payload, served = source("endpoint_usage"), source("gateway_payload"), source("served_entities")
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

-- Prices in picodollars per token (exact: list prices have at most 6 decimals per million).
CREATE TEMP TABLE prices AS
SELECT entity_name, effective_from,
       lead(effective_from) OVER (PARTITION BY entity_name ORDER BY effective_from) AS effective_until,
       round(input_usd_per_million * 1000000)::BIGINT AS p_in,
       round(output_usd_per_million * 1000000)::BIGINT AS p_out,
       round(coalesce(cache_read_usd_per_million, input_usd_per_million) * 1000000)::BIGINT AS p_cr,
       round(coalesce(cache_write_usd_per_million, input_usd_per_million) * 1000000)::BIGINT AS p_cw,
       round(coalesce(reasoning_usd_per_million, output_usd_per_million) * 1000000)::BIGINT AS p_rs
FROM (SELECT entity_name,
             CASE WHEN length(effective_from) = 10 THEN (effective_from || ' 00:00:00+00')::TIMESTAMPTZ
                  ELSE effective_from::TIMESTAMPTZ END AS effective_from,
             input_usd_per_million::DECIMAL(18, 6) AS input_usd_per_million,
             output_usd_per_million::DECIMAL(18, 6) AS output_usd_per_million,
             nullif(cache_read_usd_per_million, '')::DECIMAL(18, 6) AS cache_read_usd_per_million,
             nullif(cache_write_usd_per_million, '')::DECIMAL(18, 6) AS cache_write_usd_per_million,
             nullif(reasoning_usd_per_million, '')::DECIMAL(18, 6) AS reasoning_usd_per_million
      FROM read_csv('{data}/prices.csv', header = true, all_varchar = true));

CREATE TEMP TABLE usage_enriched AS
SELECT u.databricks_request_id, u.request_time, u.request_time::DATE AS usage_date,
       date_trunc('hour', u.request_time) AS hour, u.status_code,
       coalesce(e.endpoint_name, '(unknown)') AS endpoint_name,
       coalesce(e.entity_name, '(unknown)') AS entity_name,
       coalesce(u.requester, '(unknown)') AS requester,
       CASE WHEN map_extract(u.usage_context, 'team')[1] <> '' THEN map_extract(u.usage_context, 'team')[1]
            WHEN t.team <> '' THEN t.team ELSE 'unattributed' END AS team,
       coalesce(u.input_token_count, 0)::BIGINT AS input_tokens,
       coalesce(u.output_token_count, 0)::BIGINT AS output_tokens,
       p.p_in, p.p_out, p.p_cr, p.p_cw, p.p_rs
FROM {usage} u
LEFT JOIN entities e ON u.served_entity_id = e.served_entity_id
LEFT JOIN teams t ON u.requester = t.principal
LEFT JOIN prices p ON p.entity_name = e.entity_name AND p.effective_from <= u.request_time
                   AND (p.effective_until IS NULL OR u.request_time < p.effective_until)
WHERE u.request_time >= {lookback_start} AND u.request_time < {end};

-- Each response body parsed once (one json_extract call with every path). Invalid bodies are
-- turned into NULL before json_extract sees them: as a CASE around json_extract, DuckDB still
-- called it on an empty body of a multi-day data set and failed.
CREATE TEMP TABLE payload_parsed AS
SELECT databricks_request_id, request_time, request_time::DATE AS usage_date,
       date_trunc('hour', request_time) AS hour, status_code, execution_duration_ms,
       sampling_fraction, served_entity_id,
       CASE WHEN v[1] IS NOT NULL THEN 'openai' WHEN v[4] IS NOT NULL THEN 'anthropic' END AS kind,
       CASE WHEN v[1] IS NOT NULL THEN coalesce(v[2]::BIGINT, 0) ELSE coalesce(v[5]::BIGINT, 0) END AS cache_read,
       CASE WHEN v[1] IS NOT NULL THEN 0 ELSE coalesce(v[6]::BIGINT, 0) END AS cache_write,
       CASE WHEN v[1] IS NOT NULL THEN coalesce(v[3]::BIGINT, 0) ELSE 0 END AS reasoning
FROM (SELECT *, json_extract(CASE WHEN json_valid(response) THEN response END, [
        '$.usage.prompt_tokens', '$.usage.prompt_tokens_details.cached_tokens',
        '$.usage.completion_tokens_details.reasoning_tokens', '$.usage.input_tokens',
        '$.usage.cache_read_input_tokens', '$.usage.cache_creation_input_tokens']) AS v
      FROM {payload}
      WHERE request_time >= {start} - INTERVAL 1 DAY AND request_time < {end});

COPY (
  WITH categories AS (
    SELECT databricks_request_id, usage_date, max(cache_read) AS cr, max(cache_write) AS cw, max(reasoning) AS rs
    FROM payload_parsed WHERE kind IS NOT NULL AND databricks_request_id IS NOT NULL
    GROUP BY databricks_request_id, usage_date),
  split AS (
    SELECT u.*, c.databricks_request_id IS NOT NULL AS categories_known,
           least(greatest(coalesce(c.cr, 0), 0), greatest(u.input_tokens, 0)) AS cache_read,
           least(greatest(coalesce(c.rs, 0), 0), greatest(u.output_tokens, 0)) AS reasoning,
           coalesce(c.cw, 0) AS cw
    FROM usage_enriched u
    LEFT JOIN categories c ON c.databricks_request_id = u.databricks_request_id AND c.usage_date = u.usage_date
    WHERE u.request_time >= {start}),
  costed AS (
    SELECT *, least(greatest(cw, 0), greatest(input_tokens, 0) - cache_read) AS cache_write FROM split)
  SELECT usage_date, endpoint_name, entity_name, requester, team,
         count(*) AS requests,
         count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) AS succeeded,
         count(*) FILTER (WHERE status_code = 429) AS rate_limited,
         count(*) FILTER (WHERE status_code >= 400 AND status_code <> 429) AS failed,
         sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
         sum(cache_read) AS cache_read_tokens, sum(cache_write) AS cache_write_tokens,
         sum(reasoning) AS reasoning_tokens,
         -- Exact cost in picodollars (1e-12 USD), as DuckDB has no wider exact type to spare.
         coalesce(sum(((input_tokens - cache_read - cache_write)::HUGEINT * p_in + cache_read::HUGEINT * p_cr
                       + cache_write::HUGEINT * p_cw + (output_tokens - reasoning)::HUGEINT * p_out
                       + reasoning::HUGEINT * p_rs)), 0)::DECIMAL(38, 0) AS cost_picodollars
  FROM costed
  GROUP BY ALL
  ORDER BY ALL
) TO '{out}/daily_spend.parquet';

COPY (
  WITH counts AS (
    SELECT hour, endpoint_name, entity_name, count(*) AS requests,
           count(*) FILTER (WHERE status_code BETWEEN 400 AND 499 AND status_code <> 429) AS http_4xx,
           count(*) FILTER (WHERE status_code = 429) AS http_429,
           count(*) FILTER (WHERE status_code BETWEEN 500 AND 599) AS http_5xx
    FROM usage_enriched WHERE request_time >= {start}
    GROUP BY ALL),
  points AS (
    SELECT p.hour, coalesce(e.endpoint_name, '(unknown)') AS endpoint_name,
           coalesce(e.entity_name, '(unknown)') AS entity_name, p.execution_duration_ms AS duration_ms,
           sum(round(1000000 / p.sampling_fraction)::HUGEINT) AS weight
    FROM payload_parsed p LEFT JOIN entities e ON p.served_entity_id = e.served_entity_id
    WHERE p.request_time >= {start} AND p.status_code BETWEEN 200 AND 299 AND p.execution_duration_ms >= 0
      AND p.sampling_fraction >= 0.000000001 AND p.sampling_fraction <= 1
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
    FROM usage_enriched GROUP BY ALL
    UNION ALL
    SELECT endpoint_name, '(endpoint)', date_trunc('minute', request_time), count(*),
           sum(input_tokens + output_tokens), count(*) FILTER (WHERE status_code = 429)
    FROM usage_enriched GROUP BY endpoint_name, date_trunc('minute', request_time)),
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
""")

checks = con.execute(f"""
SELECT (SELECT sum(requests) FROM '{out}/daily_spend.parquet')::BIGINT,
       (SELECT sum(cost_picodollars) FROM '{out}/daily_spend.parquet')::VARCHAR,
       (SELECT sum(cache_read_tokens) FROM '{out}/daily_spend.parquet')::BIGINT,
       (SELECT sum(http_429) FROM '{out}/hourly_errors.parquet')::BIGINT,
       (SELECT sum(p99_latency_ms) FROM '{out}/hourly_errors.parquet')::BIGINT,
       (SELECT count(*) FROM '{out}/demand.parquet')::BIGINT,
       (SELECT sum(p99_calls_per_minute) FROM '{out}/demand.parquet')::BIGINT
""").fetchone()
names = ["requests", "cost_picodollars", "cache_read_tokens", "http_429", "sum_p99_latency_ms", "demand_rows", "sum_p99_calls_per_minute"]
print(json.dumps(dict(zip(names, checks))))
