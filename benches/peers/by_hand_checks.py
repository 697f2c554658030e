"""The check totals of the hand-written peers' Parquet results: harness plumbing, not part of
what they compute. Read with DuckDB from OUT's daily_spend, hourly_errors, demand,
rate_limited_alerts and (with traces) trace_coverage files."""


def by_hand_totals(con, out, has_traces):
    """The totals as a dict, under the names benches/peers/compare_checks.py compares."""
    names = ["requests", "cost_picodollars_without_categories", "http_429", "sum_p99_latency_ms", "demand_rows",
             "sum_p99_calls_per_minute", "rate_limited_alerts_endpoint", "rate_limited_alerts_requester"]
    values = list(con.execute(f"""
    SELECT (SELECT sum(requests) FROM '{out}/daily_spend.parquet')::BIGINT,
           (SELECT sum(cost_picodollars) FROM '{out}/daily_spend.parquet')::VARCHAR,
           (SELECT sum(http_429) FROM '{out}/hourly_errors.parquet')::BIGINT,
           (SELECT sum(p99_latency_ms) FROM '{out}/hourly_errors.parquet')::BIGINT,
           (SELECT count(*) FROM '{out}/demand.parquet')::BIGINT,
           (SELECT sum(p99_calls_per_minute) FROM '{out}/demand.parquet')::BIGINT,
           (SELECT count(*) FROM '{out}/rate_limited_alerts.parquet' WHERE scope = 'endpoint')::BIGINT,
           (SELECT count(*) FROM '{out}/rate_limited_alerts.parquet' WHERE scope = 'requester')::BIGINT
    """).fetchone())
    if has_traces:
        names += ["trace_requests", "traced", "orphan_traces"]
        values += con.execute(f"""
        SELECT sum(requests)::BIGINT, sum(traced)::BIGINT, sum(orphan_traces)::BIGINT
        FROM '{out}/trace_coverage.parquet'
        """).fetchone()
    return dict(zip(names, values))
