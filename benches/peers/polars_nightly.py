"""The nightly computation written for Polars (lazy API), as a competent Polars user would.

Same work and outputs as duckdb_nightly.py: daily_spend with token categories from the payload
bodies and exact cost (integer picodollars), hourly_errors with exact sampling-weighted latency
quantiles, and the per-minute demand statistics of the rate-limit recommendations (as of TO, 14-day
lookback), for the UTC dates FROM..TO. Tables are read with `pl.scan_delta`.

    polars_nightly.py DATA OUT FROM TO MEMORY_MIB
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

served = pl.scan_delta(f"{data}/served_entities")
entities = (
    served.filter(pl.col("served_entity_id").is_not_null())
    .sort(["change_time", "endpoint_name", "entity_name"], descending=True, nulls_last=True)
    .group_by("served_entity_id")
    .first()
    .select("served_entity_id", "endpoint_name", "entity_name")
    .collect()
    .lazy()
)
teams = pl.read_csv(f"{data}/teams.csv", infer_schema=False).lazy()


def per_token(column, fallback):
    # $ per million tokens, at most 6 decimals: picodollars per token, exactly.
    value = pl.when(pl.col(column) != "").then(pl.col(column)).otherwise(pl.col(fallback))
    return (value.cast(pl.Decimal(18, 6)) * 1_000_000).cast(pl.Int64)


prices = (
    pl.read_csv(f"{data}/prices.csv", infer_schema=False)
    .with_columns(
        pl.when(pl.col("effective_from").str.len_chars() == 10)
        .then(pl.col("effective_from") + "T00:00:00Z")
        .otherwise(pl.col("effective_from"))
        .str.to_datetime(time_zone="UTC", time_unit="us")
        .alias("effective_from"),
        pl.col("cache_read_usd_per_million").fill_null(""),
        pl.col("cache_write_usd_per_million").fill_null(""),
        pl.col("reasoning_usd_per_million").fill_null(""),
    )
    .sort("entity_name", "effective_from")
    .with_columns(pl.col("effective_from").shift(-1).over("entity_name").alias("effective_until"))
    .select(
        "entity_name", "effective_from", "effective_until",
        per_token("input_usd_per_million", "input_usd_per_million").alias("p_in"),
        per_token("output_usd_per_million", "output_usd_per_million").alias("p_out"),
        per_token("cache_read_usd_per_million", "input_usd_per_million").alias("p_cr"),
        per_token("cache_write_usd_per_million", "input_usd_per_million").alias("p_cw"),
        per_token("reasoning_usd_per_million", "output_usd_per_million").alias("p_rs"),
    )
    .lazy()
)

team_of_context = pl.col("usage_context").map.get("team")
usage = (
    pl.scan_delta(f"{data}/endpoint_usage")
    .filter((pl.col("request_time") >= lookback_start) & (pl.col("request_time") < end))
    .select(
        "databricks_request_id", "request_time", "status_code", "requester", "served_entity_id",
        team_of_context.alias("context_team"),
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
)
# Prices by period: an as-of join on request_time within the entity.
usage = (
    usage.sort("request_time")
    .join_asof(prices.sort("effective_from"), left_on="request_time", right_on="effective_from", by="entity_name")
    .with_columns(
        [pl.when(pl.col("effective_until").is_null() | (pl.col("request_time") < pl.col("effective_until")))
         .then(pl.col(c)).alias(c) for c in ["p_in", "p_out", "p_cr", "p_cw", "p_rs"]]
    )
    .collect(engine="streaming")
    .lazy()
)


def path(p):
    return pl.col("response").str.json_path_match(p).cast(pl.Int64, strict=False)


payload = (
    pl.scan_delta(f"{data}/gateway_payload")
    .filter((pl.col("request_time") >= start - datetime.timedelta(days=1)) & (pl.col("request_time") < end))
    .select(
        "databricks_request_id", "request_time", "status_code", "execution_duration_ms", "sampling_fraction",
        "served_entity_id",
        path("$.usage.prompt_tokens").alias("prompt"),
        path("$.usage.prompt_tokens_details.cached_tokens").alias("cached"),
        path("$.usage.completion_tokens_details.reasoning_tokens").alias("reasoning_o"),
        path("$.usage.input_tokens").alias("input_a"),
        path("$.usage.cache_read_input_tokens").alias("cache_read_a"),
        path("$.usage.cache_creation_input_tokens").alias("cache_write_a"),
    )
    .with_columns(
        pl.col("request_time").dt.date().alias("usage_date"),
        pl.col("request_time").dt.truncate("1h").alias("hour"),
        pl.when(pl.col("prompt").is_not_null()).then(pl.col("cached").fill_null(0))
        .otherwise(pl.col("cache_read_a").fill_null(0)).alias("cr"),
        pl.when(pl.col("prompt").is_not_null()).then(0).otherwise(pl.col("cache_write_a").fill_null(0)).alias("cw"),
        pl.when(pl.col("prompt").is_not_null()).then(pl.col("reasoning_o").fill_null(0)).otherwise(0).alias("rs"),
        (pl.col("prompt").is_not_null() | pl.col("input_a").is_not_null()).alias("has_usage"),
    )
    .collect(engine="streaming")
    .lazy()
)

categories = (
    payload.filter(pl.col("has_usage") & pl.col("databricks_request_id").is_not_null())
    .group_by("databricks_request_id", "usage_date")
    .agg(pl.col("cr").max(), pl.col("cw").max(), pl.col("rs").max(), pl.lit(True).alias("known"))
)
zero = pl.lit(0)
costed = (
    usage.filter(pl.col("request_time") >= start)
    .join(categories, on=["databricks_request_id", "usage_date"], how="left")
    .with_columns(
        pl.min_horizontal(pl.max_horizontal(pl.col("cr").fill_null(0), zero), pl.max_horizontal("input_tokens", zero)).alias("cache_read"),
        pl.min_horizontal(pl.max_horizontal(pl.col("rs").fill_null(0), zero), pl.max_horizontal("output_tokens", zero)).alias("reasoning"),
    )
    .with_columns(
        pl.min_horizontal(pl.max_horizontal(pl.col("cw").fill_null(0), zero),
                          pl.max_horizontal("input_tokens", zero) - pl.col("cache_read")).alias("cache_write"),
    )
    .with_columns(
        ((pl.col("input_tokens") - pl.col("cache_read") - pl.col("cache_write")).cast(pl.Int128) * pl.col("p_in")
         + pl.col("cache_read").cast(pl.Int128) * pl.col("p_cr") + pl.col("cache_write").cast(pl.Int128) * pl.col("p_cw")
         + (pl.col("output_tokens") - pl.col("reasoning")).cast(pl.Int128) * pl.col("p_out")
         + pl.col("reasoning").cast(pl.Int128) * pl.col("p_rs")).alias("cost_picodollars")
    )
)
status = pl.col("status_code")
daily_spend = (
    costed.group_by("usage_date", "endpoint_name", "entity_name", "requester", "team")
    .agg(
        pl.len().alias("requests"),
        status.is_between(200, 299).sum().alias("succeeded"),
        (status == 429).sum().alias("rate_limited"),
        ((status >= 400) & (status != 429)).sum().alias("failed"),
        pl.col("input_tokens").sum(), pl.col("output_tokens").sum(),
        pl.col("cache_read").sum().alias("cache_read_tokens"),
        pl.col("cache_write").sum().alias("cache_write_tokens"),
        pl.col("reasoning").sum().alias("reasoning_tokens"),
        pl.col("cost_picodollars").sum(),
    )
    .sort("usage_date", "endpoint_name", "entity_name", "requester", "team")
)

group = ["hour", "endpoint_name", "entity_name"]
counts = (
    usage.filter(pl.col("request_time") >= start)
    .group_by(group)
    .agg(
        pl.len().alias("requests"),
        (status.is_between(400, 499) & (status != 429)).sum().alias("http_4xx"),
        (status == 429).sum().alias("http_429"),
        status.is_between(500, 599).sum().alias("http_5xx"),
    )
)
sf = pl.col("sampling_fraction")
points = (
    payload.filter(
        (pl.col("request_time") >= start) & status.is_between(200, 299) & (pl.col("execution_duration_ms") >= 0)
        & (sf >= 0.000000001) & (sf <= 1)
    )
    .join(entities, on="served_entity_id", how="left")
    .with_columns(pl.col("endpoint_name").fill_null("(unknown)"), pl.col("entity_name").fill_null("(unknown)"),
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
    usage.group_by("endpoint_name", "requester", minute).agg(aggs),
    usage.group_by("endpoint_name", minute).agg(aggs).with_columns(pl.lit("(endpoint)").alias("requester"))
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

spend, errors, demand = pl.collect_all([daily_spend, hourly_errors, demand], engine="streaming")
spend.with_columns(pl.col("cost_picodollars").cast(pl.Decimal(38, 0))).write_parquet(f"{out}/daily_spend.parquet")
errors.with_columns(pl.col("p50_latency_ms"), pl.col("p95_latency_ms"), pl.col("p99_latency_ms")).write_parquet(
    f"{out}/hourly_errors.parquet")
demand.write_parquet(f"{out}/demand.parquet")
print(json.dumps({
    "requests": int(spend["requests"].sum()),
    "cost_picodollars": str(int(spend["cost_picodollars"].sum())),
    "cache_read_tokens": int(spend["cache_read_tokens"].sum()),
    "http_429": int(errors["http_429"].sum()),
    "sum_p99_latency_ms": int(errors["p99_latency_ms"].sum()),
    "demand_rows": demand.height,
    "sum_p99_calls_per_minute": int(demand["p99_calls_per_minute"].sum()),
}))
