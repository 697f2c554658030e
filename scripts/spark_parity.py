"""Runs a gateway-analytics Spark manifest on local pyspark and compares every output, row for
row, with the Delta tables DataFusion wrote for the same job and window. Called by
scripts/spark-parity.sh; exits 1 when any output differs."""

import argparse
import datetime
import decimal
import json
import os
import sys

import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyspark.sql import SparkSession

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "jobs", "src"))
import spark_runner  # noqa: E402

MAX_SHOWN = 5


def parquet_source(work):
    """Spark reads Delta only with extra jars; give it each source table as a Parquet copy."""

    def source_sql(statement):
        table = statement["table"]
        if table is None:
            return None
        uri = table.removeprefix("delta.`").removesuffix("`")
        path = os.path.join(work, statement["name"] + ".parquet")
        pq.write_table(DeltaTable(uri).to_pyarrow_table(), path)
        return f"CREATE OR REPLACE TEMPORARY VIEW {statement['name']} AS SELECT * FROM parquet.`{path}`"

    return source_sql


def normal(value):
    """One value in a form both engines' Python values compare equal in."""
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    if isinstance(value, decimal.Decimal):
        return value.normalize() if value != 0 else decimal.Decimal(0)
    if isinstance(value, (list, tuple)):
        return tuple(normal(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, normal(v)) for k, v in value.items()))
    return value


def sort_key(row):
    return tuple((v is None, str(v)) for v in row)


def datafusion_rows(root, output):
    table = DeltaTable(os.path.join(root, output["name"])).to_pyarrow_table()
    return table.column_names, [tuple(normal(v) for v in row.values()) for row in table.to_pylist()]


def compare(output, frame, root):
    name = output["name"]
    spark_columns = frame.columns
    spark = [tuple(normal(v) for v in row) for row in frame.collect()]
    columns, expected = datafusion_rows(root, output)
    problems = []
    if spark_columns != columns:
        problems.append(f"columns differ:\n    spark      {spark_columns}\n    datafusion {columns}")
    else:
        spark_sorted, expected_sorted = sorted(spark, key=sort_key), sorted(expected, key=sort_key)
        if len(spark) != len(expected):
            problems.append(f"{len(spark)} rows on Spark, {len(expected)} on DataFusion")
        shown = 0
        for got, want in zip(spark_sorted, expected_sorted):
            if got != want and shown < MAX_SHOWN:
                diff = {c: (g, w) for c, g, w in zip(columns, got, want) if g != w}
                problems.append(f"row differs (spark, datafusion): {diff}")
                shown += 1
    status = "same" if not problems else "DIFFERENT"
    print(f"  {name}: {len(spark)} rows, {status}", flush=True)
    for problem in problems:
        print(f"    {problem}", flush=True)
    return not problems


# The ledger columns both engines fill the same way (the Spark path reads its inputs by name, so
# it records no input versions; run ids and times differ by nature).
LEDGER_COLUMNS = ["usage_date", "status", "outputs", "reason", "price_version", "teams_version", "mode",
                  "definitions_version", "recommendations_as_of"]


def compare_ledger(ledger, status, frame, root):
    """The `finished` ledger rows Spark would write equal DataFusion's on LEDGER_COLUMNS."""
    if status != "finished":
        return None
    spark = sorted(tuple(normal(v) for v in row) for row in frame.select(*LEDGER_COLUMNS).collect())
    table = DeltaTable(os.path.join(root, ledger["name"])).to_pyarrow_table().select(LEDGER_COLUMNS)
    expected = sorted(tuple(normal(v) for v in row.values()) for row in table.to_pylist())
    same = spark == expected
    print(f"  {ledger['name']}: {len(spark)} rows, {'same' if same else 'DIFFERENT'}", flush=True)
    if not same:
        print(f"    spark      {spark[:2]}\n    datafusion {expected[:2]}", flush=True)
    return same


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--datafusion", required=True, help="the output location DataFusion wrote")
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    with open(args.manifest) as f:
        manifest = json.load(f)

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("gateway-analytics spark parity")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # The test data are tiny: one shuffle partition per core (still more than one, so an
        # order-dependent query can show) and no adaptive re-planning between stages, which
        # costs more than it saves here (demo job 137 s instead of 162 s, 2026-12-03).
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    results = []
    print(f"Spark {spark.version} against DataFusion, {len(manifest['outputs'])} outputs:", flush=True)
    def on_ledger(ledger, status, frame):
        same = compare_ledger(ledger, status, frame, args.datafusion)
        if same is not None:
            results.append(same)

    spark_runner.run(
        spark,
        manifest,
        source_sql=parquet_source(args.work),
        on_output=lambda output, frame: results.append(compare(output, frame, args.datafusion)),
        on_ledger=on_ledger,
    )
    spark.stop()
    same = sum(results)
    print(f"spark parity: {same} of {len(results)} outputs (and the ledger) identical")
    sys.exit(0 if same == len(results) else 1)


if __name__ == "__main__":
    main()
