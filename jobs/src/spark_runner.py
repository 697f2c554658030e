"""Computes gateway-analytics outputs on Spark from the manifest that `gateway-analytics spark-sql`
prints: the same `queries/*.sql` files, run by Spark SQL instead of DataFusion.

On Databricks (the bundle's `gateway_analytics_spark` job) it fills in the job file template
(jobs/databricks-job.toml) like run_gateway_analytics.py and writes each output into the Unity
Catalog schema, replacing the window's partitions in one Delta commit per table, like `run`:

    spark_runner.py --template databricks-job.toml --catalog main --schema gateway \
        [--payload-table c.s.chat_payload] [--traces-table c.s.trace_logs_1] \
        [--run-date D | --from D --to D]

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


def main(argv=None):
    """The Databricks task: fills in the job file template like run_gateway_analytics.py, asks the
    binary for the manifest and writes the outputs into <catalog>.<schema>."""
    import tempfile

    import run_gateway_analytics as launcher

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", required=True, help="the job file template (TOML)")
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--payload-table", default="")
    parser.add_argument("--traces-table", default="")
    parser.add_argument("--run-date", default="", help="UTC date the window is the day before of")
    parser.add_argument("--from", dest="date_from", default="")
    parser.add_argument("--to", dest="date_to", default="")
    args = parser.parse_args(argv)

    # The template's output.location is not used here: outputs become tables of the schema.
    values = {**vars(args), "output_location": f"/tmp/{args.catalog}.{args.schema}"}
    with open(launcher.workspace_path(args.template), encoding="utf-8") as f:
        job_file = launcher.render(f.read(), values)
    date_from, date_to = launcher.window(args.run_date, args.date_from, args.date_to)
    with tempfile.TemporaryDirectory() as work:
        config = os.path.join(work, "job.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(job_file)
        command = [launcher.find_binary(), "spark-sql", "--config", config, "--from", date_from, "--to", date_to]
        manifest = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("gateway-analytics").getOrCreate()
    run(spark, manifest, on_output=replace_partitions(f"{args.catalog}.{args.schema}"))


if __name__ == "__main__":
    main()
