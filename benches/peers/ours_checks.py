"""The harness's check totals, read from gateway-analytics' output Delta tables for one day."""
import datetime
import json
import os
import sys
from decimal import Decimal

import pyarrow.compute as pc
from deltalake import DeltaTable

out, day = sys.argv[1], datetime.date.fromisoformat(sys.argv[2])


def rows(table, column):
    data = DeltaTable(f"{out}/{table}").to_pyarrow_table(filters=[(column, "=", day)])
    return data


def total(data, column):
    value = pc.sum(data[column]).as_py()
    return 0 if value is None else value


spend = rows("daily_spend", "usage_date")
errors = rows("hourly_errors", "usage_date")
demand = rows("rate_limit_recommendations", "as_of_date")
print(json.dumps({
    "requests": total(spend, "requests"),
    "cost_picodollars": str(int(Decimal(total(spend, "cost_usd")) * 10**12)),
    "cache_read_tokens": total(spend, "cache_read_tokens"),
    "http_429": total(errors, "http_429"),
    "sum_p99_latency_ms": total(errors, "p99_latency_ms"),
    "demand_rows": demand.num_rows,
    "sum_p99_calls_per_minute": total(demand, "p99_calls_per_minute"),
}))
# pyarrow's threads sometimes abort the interpreter's teardown ("terminate called without an
# active exception"); the totals are printed, so leave without it.
sys.stdout.flush()
os._exit(0)
