"""The nightly numbers written by hand in Polars (lazy API, streaming engine), as a user would.

Same work and outputs as duckdb_by_hand.py: no response body is read (token counts from the
usage table, billed at the input and output prices only; latency from the payload table's small
columns). daily_spend, hourly_errors, the per-minute demand statistics (as of TO, 14-day
lookback), the 429 alerts of alerts.sql's rate_limited_share rule (default thresholds) and, when
the data set has a `trace_logs` table, trace coverage, for the UTC dates FROM..TO.

    polars_by_hand.py DATA OUT FROM TO MEMORY_MIB
"""
import datetime
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore", message="Sortedness")
data, out, first, last = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
os.environ.setdefault("POLARS_MAX_THREADS", "2")
import polars as pl  # noqa: E402  (after the thread setting)

utc = datetime.timezone.utc
start = datetime.datetime.fromisoformat(first).replace(tzinfo=utc)
end = datetime.datetime.fromisoformat(last).replace(tzinfo=utc) + datetime.timedelta(days=1)
lookback_start = min(start, end - datetime.timedelta(days=14))
day = datetime.timedelta(days=1)

entities = (
    pl.scan_delta(f"{data}/served_entities")
    .filter(pl.col("served_entity_id").is_not_null())
    .sort(["change_time", "endpoint_name", "entity_name"], descending=True, nulls_last=True)
    .group_by("served_entity_id")
    .first()
    .select("served_entity_id", "endpoint_name", "entity_name")
    .collect()
    .lazy()
)
teams = pl.read_csv(f"{data}/teams.csv", infer_schema=False).lazy()


def per_token(column):
    # $ per million tokens, at most 6 decimals: picodollars per token, exactly.
    return (pl.col(column).cast(pl.Decimal(18, 6)) * 1_000_000).cast(pl.Int64)


prices = (
    pl.read_csv(f"{data}/prices.csv", infer_schema=False)
    .with_columns(
        pl.when(pl.col("effective_from").str.len_chars() == 10)
        .then(pl.col("effective_from") + "T00:00:00Z")
        .otherwise(pl.col("effective_from"))
        .str.to_datetime(time_zone="UTC", time_unit="us")
        .alias("effective_from"),
    )
    .sort("entity_name", "effective_from")
    .with_columns(pl.col("effective_from").shift(-1).over("entity_name").alias("effective_until"))
    .select("entity_name", "effective_from", "effective_until",
            per_token("input_usd_per_million").alias("p_in"), per_token("output_usd_per_million").alias("p_out"))
    .lazy()
)


def map_value(column, key):
    return pl.col(column).map.get(key)


requests = (
    pl.scan_delta(f"{data}/endpoint_usage")
    .filter((pl.col("request_time") >= lookback_start) & (pl.col("request_time") < end))
    .select(
        "databricks_request_id", "request_time", "status_code", "requester", "served_entity_id",
        map_value("usage_context", "team").alias("context_team"),
        pl.col("input_token_count").fill_null(0).cast(pl.Int64).alias("input_tokens"),
        pl.col("output_token_count").fill_null(0).cast(pl.Int64).alias("output_tokens"),
    )
    .join(entities, on="served_entity_id", how="left")
    .join(teams, left_on="requester", right_on="principal", how="left")
    .with_columns(
        pl.col("request_time").dt.date().alias("usage_date"),
        pl.col("request_time").dt.truncate("1h").alias("hour"),
        pl.col("endpoint_name").fill_null("(unknown)"),
        pl.col("entity_name").fill_null("(unknown)"),
        pl.col("requester").fill_null("(unknown)"),
        pl.when(pl.col("context_team") != "").then(pl.col("context_team"))
        .when(pl.col("team") != "").then(pl.col("team"))
        .otherwise(pl.lit("unattributed")).alias("team"),
    )
    .sort("request_time")
    .join_asof(prices.sort("effective_from"), left_on="request_time", right_on="effective_from", by="entity_name")
    .with_columns(
        [pl.when(pl.col("effective_until").is_null() | (pl.col("request_time") < pl.col("effective_until")))
         .then(pl.col(c)).alias(c) for c in ["p_in", "p_out"]]
    )
    .drop("context_team", "effective_from", "effective_until")
    .collect(engine="streaming")
    .lazy()
)
in_window = requests.filter(pl.col("request_time") >= start)
status = pl.col("status_code")

daily_spend = (
    in_window.group_by("usage_date", "endpoint_name", "entity_name", "requester", "team")
    .agg(
        pl.len().alias("requests"),
        status.is_between(200, 299).sum().alias("succeeded"),
        (status == 429).sum().alias("rate_limited"),
        ((status >= 400) & (status != 429)).sum().alias("failed"),
        pl.col("input_tokens").sum(), pl.col("output_tokens").sum(),
        (pl.col("input_tokens").cast(pl.Int128) * pl.col("p_in")
         + pl.col("output_tokens").cast(pl.Int128) * pl.col("p_out")).sum().alias("cost_picodollars"),
    )
    .sort("usage_date", "endpoint_name", "entity_name", "requester", "team")
)

group = ["hour", "endpoint_name", "entity_name"]
counts = in_window.group_by(group).agg(
    pl.len().alias("requests"),
    (status.is_between(400, 499) & (status != 429)).sum().alias("http_4xx"),
    (status == 429).sum().alias("http_429"),
    status.is_between(500, 599).sum().alias("http_5xx"),
)
sf = pl.col("sampling_fraction")
points = (
    pl.scan_delta(f"{data}/gateway_payload")
    .select("request_time", "status_code", "execution_duration_ms", "sampling_fraction", "served_entity_id")
    .filter(
        (pl.col("request_time") >= start) & (pl.col("request_time") < end) & status.is_between(200, 299)
        & (pl.col("execution_duration_ms") >= 0) & (sf >= 0.000000001) & (sf <= 1)
    )
    .join(entities, on="served_entity_id", how="left")
    .with_columns(pl.col("request_time").dt.truncate("1h").alias("hour"),
                  pl.col("endpoint_name").fill_null("(unknown)"), pl.col("entity_name").fill_null("(unknown)"),
                  (1_000_000 / sf).round(0).cast(pl.Int128).alias("weight"))
    .group_by(*group, pl.col("execution_duration_ms").alias("duration_ms"))
    .agg(pl.col("weight").sum())
    .sort(*group, "duration_ms")
    .with_columns(pl.col("weight").cum_sum().over(group).alias("cum"), pl.col("weight").sum().over(group).alias("total"))
)


def quantile(q):
    return pl.col("duration_ms").filter(pl.col("cum") * 100 >= pl.col("total") * q).min()


latency = points.group_by(group).agg(
    quantile(50).alias("p50_latency_ms"), quantile(95).alias("p95_latency_ms"), quantile(99).alias("p99_latency_ms"))
hourly_errors = (
    counts.join(latency, on=group, how="left")
    .with_columns(((pl.col("http_4xx") + pl.col("http_429") + pl.col("http_5xx")) / pl.col("requests")).alias("error_rate"))
    .sort(group)
)

minute = pl.col("request_time").dt.truncate("1m").alias("minute")
aggs = [pl.len().alias("calls"), (pl.col("input_tokens") + pl.col("output_tokens")).sum().alias("tokens"),
        (status == 429).sum().alias("rate_limited")]
minutes = pl.concat([
    requests.group_by("endpoint_name", "requester", minute).agg(aggs),
    requests.group_by("endpoint_name", minute).agg(aggs).with_columns(pl.lit("(endpoint)").alias("requester"))
    .select("endpoint_name", "requester", "minute", "calls", "tokens", "rate_limited"),
])
key = ["endpoint_name", "requester"]
ranked = minutes.with_columns(
    pl.col("calls").rank("ordinal").over(key).alias("calls_rank"),
    pl.col("tokens").rank("ordinal").over(key).alias("tokens_rank"),
    pl.len().over(key).alias("active_minutes"),
)


def nearest(column, rank, q):
    return pl.col(column).filter(pl.col(rank) * 100 >= pl.col("active_minutes") * q).min()


demand = ranked.group_by(key).agg(
    pl.col("active_minutes").max(), pl.col("calls").sum(), pl.col("rate_limited").sum(),
    nearest("calls", "calls_rank", 50).alias("p50_calls_per_minute"),
    nearest("calls", "calls_rank", 95).alias("p95_calls_per_minute"),
    nearest("calls", "calls_rank", 99).alias("p99_calls_per_minute"),
    pl.col("calls").max().alias("peak_calls_per_minute"),
    nearest("tokens", "tokens_rank", 99).alias("p99_tokens_per_minute"),
    pl.col("tokens").max().alias("peak_tokens_per_minute"),
).sort(key)

# 429 alerts: the groups in which alerts.sql's rate_limited_share rule fires (default thresholds).
# Counts as Int64: Polars counts in UInt32 and an integer literal takes the column's type, so
# `requests * 50_000` wraps past 85,899 requests in an hour (it did at 10M requests a day).
share = [pl.len().cast(pl.Int64).alias("requests"), (status == 429).sum().cast(pl.Int64).alias("rate_limited")]
alerts = (
    pl.concat([
        in_window.group_by("endpoint_name", "hour").agg(share)
        .with_columns(pl.lit("endpoint").alias("scope"), pl.col("endpoint_name").alias("scope_value")),
        in_window.group_by("endpoint_name", "requester", "hour").agg(share)
        .with_columns(pl.lit("requester").alias("scope"), pl.col("requester").alias("scope_value")).drop("requester"),
    ], how="diagonal")
    .filter((pl.col("requests") >= 20) & (pl.col("rate_limited") >= 5)
            & (pl.col("rate_limited") * 1_000_000 >= pl.col("requests") * 50_000))
    .with_columns(pl.when(pl.col("rate_limited") * 1_000_000 >= pl.col("requests") * 200_000)
                  .then(pl.lit("critical")).otherwise(pl.lit("warning")).alias("severity"))
    .sort("endpoint_name", "scope", "scope_value", "hour")
)

frames = [daily_spend, hourly_errors, demand, alerts]
has_traces = os.path.isdir(f"{data}/trace_logs")
if has_traces:
    traces = pl.scan_delta(f"{data}/trace_logs").select("client_request_id", "request_time", "trace_metadata")
    traced_ids = (
        traces.filter((pl.col("request_time") >= start - day) & (pl.col("request_time") < end + day)
                      & pl.col("client_request_id").is_not_null())
        .select("client_request_id").unique()
        .with_columns(pl.lit(True).alias("has_trace"))
    )
    coverage = (
        in_window.filter(status.is_between(200, 299))
        .join(traced_ids, left_on="databricks_request_id", right_on="client_request_id", how="left")
        .group_by("usage_date", "endpoint_name")
        .agg(pl.len().alias("requests"), pl.col("has_trace").is_not_null().sum().alias("traced"))
    )
    gateway_ids = (
        pl.scan_delta(f"{data}/endpoint_usage")
        .filter((pl.col("request_time") >= start - day) & (pl.col("request_time") < end + day)
                & pl.col("databricks_request_id").is_not_null())
        .select(pl.col("databricks_request_id").alias("client_request_id")).unique()
    )
    orphans = (
        traces.filter((pl.col("request_time") >= start) & (pl.col("request_time") < end))
        .join(gateway_ids, on="client_request_id", how="anti")
        .group_by(pl.col("request_time").dt.date().alias("usage_date"),
                  map_value("trace_metadata", "mlflow.databricks.modelServingEndpointName")
                  .fill_null("(none)").alias("endpoint_name"))
        .agg(pl.len().alias("orphan_traces"))
    )
    trace_coverage = (
        coverage.join(orphans, on=["usage_date", "endpoint_name"], how="full", coalesce=True)
        .with_columns(pl.col("requests").fill_null(0), pl.col("traced").fill_null(0),
                      pl.col("orphan_traces").fill_null(0))
        .with_columns((pl.col("traced") / pl.col("requests")).alias("coverage"))
        .sort("usage_date", "endpoint_name")
    )
    frames.append(trace_coverage)

results = pl.collect_all(frames, engine="streaming")
spend, errors, demand, alerts = results[:4]
spend.with_columns(pl.col("cost_picodollars").cast(pl.Decimal(38, 0))).write_parquet(f"{out}/daily_spend.parquet")
errors.write_parquet(f"{out}/hourly_errors.parquet")
demand.write_parquet(f"{out}/demand.parquet")
alerts.write_parquet(f"{out}/rate_limited_alerts.parquet")
checks = {
    "requests": int(spend["requests"].sum()),
    "cost_picodollars_without_categories": str(int(spend["cost_picodollars"].sum())),
    "http_429": int(errors["http_429"].sum()),
    "sum_p99_latency_ms": int(errors["p99_latency_ms"].sum()),
    "demand_rows": demand.height,
    "sum_p99_calls_per_minute": int(demand["p99_calls_per_minute"].sum()),
    "rate_limited_alerts_endpoint": int((alerts["scope"] == "endpoint").sum()),
    "rate_limited_alerts_requester": int((alerts["scope"] == "requester").sum()),
}
if has_traces:
    coverage = results[4]
    coverage.write_parquet(f"{out}/trace_coverage.parquet")
    checks.update({"trace_requests": int(coverage["requests"].sum()), "traced": int(coverage["traced"].sum()),
                   "orphan_traces": int(coverage["orphan_traces"].sum())})
print(json.dumps(checks))
