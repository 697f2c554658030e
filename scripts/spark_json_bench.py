"""Times the Spark mode's reading of response bodies on local pyspark: `gateway_usage(response)`
over every row of a payload table, as the Spark SQL built-ins of jobs/src/gateway_functions.py
and, for comparison, as earlier versions of that module: built-ins (--builtins-module) or the
row-at-a-time Python UDF (--udf-module). Numbers are in docs/PERFORMANCE.md.

    gateway-analytics generate --out /tmp/bench --days 1 --requests-per-day 1000000 --lean
    git show c146c44:jobs/src/gateway_functions.py > /tmp/udf_gateway_functions.py
    git show d62cc43:jobs/src/gateway_functions.py > /tmp/before_gateway_functions.py
    ~/.cache/gateway-analytics/venvs/spark-parity/bin/python scripts/spark_json_bench.py \
        --payload /tmp/bench/gateway_payload --rows 20000 \
        --builtins-module /tmp/before_gateway_functions.py --udf-module /tmp/udf_gateway_functions.py

Each variant runs the same aggregate over the parsed bodies; the variants take turns, one run
each per round, --runs rounds (the machine may be shared: interleaving spreads its load over all
of them). Every time is printed, then each variant's minimum and median; the first round warms
the JVM and the Parquet cache, so the summary leaves it out when there are three rounds or more.
The aggregates must agree (exit status 1 otherwise).
"""

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time

import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyspark.sql import SparkSession

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "jobs", "src"))
import gateway_functions  # noqa: E402

# The bodies are grouped whole first, so that each is read once, as in payload_parsed (grouping
# by body.kind directly lets Spark's optimiser push `.kind` into the expression: the built-ins
# were then evaluated twice per row, once for the struct and once for its kind).
AGGREGATE = (
    "SELECT body.kind, SUM(n) AS n, SUM(n * body.input_tokens) AS input_tokens, SUM(n * body.output_tokens) AS output_tokens, "
    "SUM(n * body.cache_read_tokens) AS cache_read, SUM(IF(body.error_code IS NULL, 0, n)) AS errors "
    "FROM (SELECT body, COUNT(*) AS n FROM (SELECT gateway_usage(response) AS body FROM payload) GROUP BY body) "
    "GROUP BY body.kind ORDER BY body.kind"
)


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def variants(spark, args):
    """(label, SQL) of each variant: this checkout's built-ins first."""
    found = [("built-ins (this checkout)", gateway_functions.inline(AGGREGATE))]
    for i, path in enumerate(args.builtins_module or []):
        found.append((f"built-ins ({os.path.basename(path)})", load(path, f"builtins_{i}").inline(AGGREGATE)))
    if args.udf_module:
        load(args.udf_module, "udf_gateway_functions").register(spark)
        found.append(("Python UDF", AGGREGATE))
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--payload", required=True, help="a payload Delta table (generate --lean writes gateway_payload)")
    parser.add_argument("--builtins-module", action="append", help="an earlier gateway_functions.py with inline(sql)")
    parser.add_argument("--udf-module", help="an earlier gateway_functions.py with register(spark) (the Python UDF)")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--rows", type=int, default=0, help="only the first ROWS payload rows (0: all)")
    parser.add_argument("--runs", type=int, default=3, help="rounds: each variant runs once per round")
    args = parser.parse_args()

    spark = (
        SparkSession.builder.master(f"local[{args.cores}]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "payload.parquet")
        table = DeltaTable(args.payload).to_pyarrow_table(columns=["response"])
        pq.write_table(table.slice(0, args.rows) if args.rows else table, path)
        del table
        spark.read.parquet(path).createOrReplaceTempView("payload")
        rows = spark.table("payload").count()
        nbytes = spark.sql("SELECT SUM(length(response)) AS b FROM payload").collect()[0]["b"]
        print(f"{rows} payload rows, {nbytes / 1e6:.1f} MB of response text, Spark {spark.version}, local[{args.cores}]")
        found = variants(spark, args)
        times = {label: [] for label, _ in found}
        results = {}
        for run in range(args.runs):
            for label, sql in found:
                start = time.perf_counter()
                results[label] = spark.sql(sql).collect()
                times[label].append(time.perf_counter() - start)
                print(f"  round {run + 1}: {label}: {times[label][-1]:.1f} s", flush=True)
        print("summary (s)" + (", first round left out" if args.runs >= 3 else "") + ":")
        for label, all_times in times.items():
            kept = all_times[1:] if args.runs >= 3 else all_times
            print(
                f"  {label}: min {min(kept):.1f}, median {statistics.median(kept):.1f} "
                f"(all: {', '.join(f'{t:.1f}' for t in all_times)})"
            )
        reference = results[found[0][0]]
        for row in reference:
            print(f"    {row.asDict()}")
        differ = [label for label, rows in results.items() if rows != reference]
        print(f"  same aggregates: {not differ}" + (f" (differ: {', '.join(differ)})" if differ else ""))
        if differ:
            sys.exit(1)
    spark.stop()


if __name__ == "__main__":
    main()
