"""Times the Spark mode's reading of response bodies on local pyspark: `gateway_usage(response)`
over every row of a payload table, as Spark SQL built-ins (jobs/src/gateway_functions.py) and,
with --udf-module, as the row-at-a-time Python UDF of an earlier release, for comparison.
Numbers are in docs/PERFORMANCE.md.

    gateway-analytics generate --out /tmp/bench --days 2 --requests-per-day 100000 --lean
    git show c146c44:jobs/src/gateway_functions.py > /tmp/udf_gateway_functions.py
    ~/.cache/gateway-analytics/venvs/spark-parity/bin/python scripts/spark_json_bench.py \
        --payload /tmp/bench/gateway_payload [--udf-module /tmp/udf_gateway_functions.py]

Each variant runs the same aggregate over the parsed bodies --runs times (3; the first warms the
JVM and the Parquet cache) and reports the best time; the aggregates must agree.
"""

import argparse
import importlib.util
import os
import sys
import tempfile
import time

import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyspark.sql import SparkSession

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "jobs", "src"))
import gateway_functions  # noqa: E402

AGGREGATE = (
    "SELECT body.kind, COUNT(*) AS n, SUM(body.input_tokens) AS input_tokens, SUM(body.output_tokens) AS output_tokens, "
    "SUM(body.cache_read_tokens) AS cache_read, COUNT(body.error_code) AS errors "
    "FROM (SELECT gateway_usage(response) AS body FROM payload) GROUP BY body.kind ORDER BY body.kind"
)


def best_of(spark, sql, runs=3):
    times, rows = [], None
    for _ in range(runs):
        start = time.perf_counter()
        rows = spark.sql(sql).collect()
        times.append(time.perf_counter() - start)
    return min(times), times, rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--payload", required=True, help="a payload Delta table (generate --lean writes gateway_payload)")
    parser.add_argument("--udf-module", help="an earlier gateway_functions.py with register(spark) (the Python UDF)")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--rows", type=int, default=0, help="only the first ROWS payload rows (0: all)")
    parser.add_argument("--runs", type=int, default=3)
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
        spark.read.parquet(path).createOrReplaceTempView("payload")
        rows = spark.table("payload").count()
        nbytes = spark.sql("SELECT SUM(length(response)) AS b FROM payload").collect()[0]["b"]
        print(f"{rows} payload rows, {nbytes / 1e6:.1f} MB of response text, Spark {spark.version}, local[{args.cores}]")
        results = {}
        best, times, results["built-ins"] = best_of(spark, gateway_functions.inline(AGGREGATE), args.runs)
        print(f"  Spark SQL built-ins: best {best:.1f} s ({', '.join(f'{t:.1f}' for t in times)})", flush=True)
        if args.udf_module:
            spec = importlib.util.spec_from_file_location("udf_gateway_functions", args.udf_module)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules["udf_gateway_functions"] = module
            module.register(spark)
            best_udf, times, results["udf"] = best_of(spark, AGGREGATE, args.runs)
            print(f"  Python UDF:          best {best_udf:.1f} s ({', '.join(f'{t:.1f}' for t in times)})", flush=True)
            print(f"  speed-up: {best_udf / best:.1f}x; same aggregates: {results['udf'] == results['built-ins']}")
            for row in results["built-ins"]:
                print(f"    {row.asDict()}")
            if results["udf"] != results["built-ins"]:
                sys.exit(1)
    spark.stop()


if __name__ == "__main__":
    main()
