"""The harness's check totals, read from gateway-analytics' output Delta tables for FROM..TO.

    ours_checks.py OUTPUT_LOCATION FROM TO

Totals of the tables the run wrote: alerts and trace_coverage only when they exist.
"""
import datetime
import json
import os
import sys
from decimal import Decimal

import pyarrow.compute as pc
from deltalake import DeltaTable

out = sys.argv[1]
first, last = datetime.date.fromisoformat(sys.argv[2]), datetime.date.fromisoformat(sys.argv[3])


def rows(table, column, since=first):
    return DeltaTable(f"{out}/{table}").to_pyarrow_table(filters=[(column, ">=", since), (column, "<=", last)])


def total(data, column):
    value = pc.sum(data[column]).as_py()
    return 0 if value is None else value


spend = rows("daily_spend", "usage_date")
errors = rows("hourly_errors", "usage_date")
demand = rows("rate_limit_recommendations", "as_of_date", since=last)
checks = {
    "requests": total(spend, "requests"),
    "cost_picodollars": str(int(Decimal(total(spend, "cost_usd")) * 10**12)),
    "cache_read_tokens": total(spend, "cache_read_tokens"),
    "http_429": total(errors, "http_429"),
    "sum_p99_latency_ms": total(errors, "p99_latency_ms"),
    "demand_rows": demand.num_rows,
    "sum_p99_calls_per_minute": total(demand, "p99_calls_per_minute"),
}
if os.path.isdir(f"{out}/alerts"):
    alerts = rows("alerts", "usage_date").to_pylist()
    firing = [a for a in alerts if a["rule"] == "rate_limited_share" and a["status"] == "firing"]
    checks["rate_limited_alerts_endpoint"] = sum(1 for a in firing if a["scope"] == "endpoint")
    checks["rate_limited_alerts_requester"] = sum(1 for a in firing if a["scope"] == "requester")
if os.path.isdir(f"{out}/trace_coverage"):
    coverage = rows("trace_coverage", "usage_date")
    checks["trace_requests"] = total(coverage, "requests")
    checks["traced"] = total(coverage, "traced")
    checks["orphan_traces"] = total(coverage, "orphan_traces")
print(json.dumps(checks))
# pyarrow's threads sometimes abort the interpreter's teardown ("terminate called without an
# active exception"); the totals are printed, so leave without it.
sys.stdout.flush()
os._exit(0)
