"""Computes gateway-analytics outputs on Spark from the manifest that `gateway-analytics spark-sql`
prints: the same `queries/*.sql` files, run by Spark SQL instead of DataFusion.

On Databricks (the bundle's `gateway_analytics_spark` job) it writes each output into a Unity
Catalog schema, replacing the window's partitions in one Delta commit per table, like `run`:

    spark_runner.py --config job.toml --from 2026-11-01 --to 2026-11-03 --target main.gateway

The Spark parity test (scripts/spark_parity.py) imports `run` and compares the rows with
DataFusion's.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_functions  # noqa: E402


def run(spark, manifest, source_sql=None, on_output=None):
    """Runs `manifest` on `spark`. `source_sql(statement)` may replace a `source` statement's SQL
    (the parity test reads Parquet copies); `on_output(output, dataframe)` receives each output,
    materialised once and also registered as a view for the outputs that read it."""
    for key, value in manifest["session_conf"]:
        spark.conf.set(key, value)
    gateway_functions.register(spark)
    for statement in manifest["statements"]:
        sql = statement["sql"]
        if statement["kind"] == "source" and source_sql is not None:
            sql = source_sql(statement) or sql
        spark.sql(sql)
    for output in manifest["outputs"]:
        frame = spark.sql(output["sql"]).cache()
        frame.count()
        frame.createOrReplaceTempView(output["name"])
        if on_output is not None:
            on_output(output, frame)


def replace_partitions(target):
    """An `on_output` that replaces the window's partitions of `<target>.<output>`."""

    def write(output, frame):
        column = output["partition_column"]
        condition = f"{column} BETWEEN DATE'{output['replace_from']}' AND DATE'{output['replace_to']}'"
        (
            frame.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", condition)
            .partitionBy(column)
            .saveAsTable(f"{target}.{output['name']}")
        )
        print(f"{output['name']}: {frame.count()} rows", flush=True)

    return write


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the job file (TOML)")
    parser.add_argument("--from", dest="date_from", help="first UTC date (default: yesterday)")
    parser.add_argument("--to", dest="date_to", help="last UTC date, inclusive")
    parser.add_argument("--target", required=True, help="catalog.schema that receives the output tables")
    parser.add_argument("--binary", default="gateway-analytics", help="the gateway-analytics command")
    args = parser.parse_args()

    command = [args.binary, "spark-sql", "--config", args.config]
    if args.date_from:
        command += ["--from", args.date_from]
    if args.date_to:
        command += ["--to", args.date_to]
    manifest = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("gateway-analytics").getOrCreate()
    run(spark, manifest, on_output=replace_partitions(args.target))


if __name__ == "__main__":
    main()
