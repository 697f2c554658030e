"""The hand-written nightly numbers (duckdb_by_hand.py's computation) on our own engine.

Runs benches/peers/datafusion_by_hand.sql through `gateway-analytics query`, one process per
output (`--format parquet --out`), in the session `run` uses: DataFusion with the job's memory
budget, the same Delta readers. It tells what the engine takes for the work a user writes by
hand, so the distance between it and `run --only` is what the exact numbers (every body
parsed, token categories joined, data quality) cost. Results go to Parquet files; the check
totals to stdout as JSON (duckdb_by_hand.py's names, read back with DuckDB).

    datafusion_by_hand.py DATA OUT FROM TO MEMORY_MIB BINARY
"""
import datetime
import json
import os
import re
import subprocess
import sys

import duckdb

from by_hand_checks import by_hand_totals

data, out, first, last, memory_mib, binary = sys.argv[1:7]
last_day = datetime.date.fromisoformat(last)
lookback = min(datetime.date.fromisoformat(first), last_day - datetime.timedelta(days=13))


def timestamp(day):
    return f"TIMESTAMP '{day}T00:00:00Z'"


inputs = {"usage": "endpoint_usage", "served_entities": "served_entities", "payload": "gateway_payload",
          "prices": "prices.csv", "teams": "teams.csv"}
has_traces = os.path.isdir(f"{data}/trace_logs")
if has_traces:
    inputs["traces"] = "trace_logs"
job = os.path.join(out, "job.toml")
with open(job, "w") as f:
    f.write("[inputs]\n")
    for name, path in inputs.items():
        f.write(f'{name} = "{data}/{path}"\n')
    f.write(f'\n[output]\nlocation = "{out}/outputs"\n\n[engine]\nmemory_limit_mib = {memory_mib}\n')

here = os.path.dirname(os.path.abspath(__file__))
sql = open(os.path.join(here, "datafusion_by_hand.sql")).read()
sql = (sql.replace("${lookback_start}", timestamp(lookback)).replace("${start}", timestamp(first))
       .replace("${end}", timestamp(last_day + datetime.timedelta(days=1))))
prelude, *sections = re.split(r"^-- output: (\w+)\n", sql, flags=re.M)
for name, query in zip(sections[0::2], sections[1::2]):
    if name == "trace_coverage" and not has_traces:
        continue
    subprocess.run([binary, "query", "--config", job, "--format", "parquet", "--out", f"{out}/{name}.parquet"],
                   input=prelude + query, text=True, check=True)

print(json.dumps(by_hand_totals(duckdb.connect(), out, has_traces)))
