"""Computes gateway-analytics outputs on Spark from the manifest that `gateway-analytics spark-sql`
prints: the same `queries/*.sql` files, run by Spark SQL instead of DataFusion.

On Databricks (the bundle's `gateway_analytics_spark` job) it fills in the job file template
(jobs/databricks-job.toml) like run_gateway_analytics.py and writes each output into the Unity
Catalog schema, replacing the window's dates in one Delta commit per table, like `run`; the
tables are clustered on the date (liquid clustering), not partitioned.
Like `run`, it reads the alerts of the day before each window from the schema's `alerts` table
(the state of the alerts' lifecycle), marks the window's dates `started` in the ledger
`computed_dates` before the first output commit and `finished` after the last, and first
recomputes any date an earlier run left `started` (killed half-way). Only this job writes the schema's output tables, and the
job runs one at a time (`max_concurrent_runs: 1`, queued): that is its lease.

    spark_runner.py --template databricks-job.toml --catalog main --schema gateway \
        [--payload-table c.s.chat_payload] [--traces-table c.s.trace_logs_1] \
        [--gateway-usage-table c.s.ai_gateway_usage] [--gateway-payload-table c.s.chat_payload] \
        [--run-date D | --from D --to D]

The Spark parity test (scripts/spark_parity.py) imports `run` and compares the rows with
DataFusion's.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys

DESCRIPTION = "Computes gateway-analytics outputs on Spark from `gateway-analytics spark-sql`'s manifest."


def use_modules_beside(template):
    """Makes this script's sibling modules (gateway_functions, run_gateway_analytics) importable.

    Databricks does not define `__file__` for every way it runs a Python file (exec, IPython), so
    they are found from the job file template instead: the bundle deploys it as
    `<files>/databricks-job.toml` and the modules in `<files>/src/`, as in the repository's
    `jobs/`. Returns that folder."""
    # A bundle path may lack the /Workspace prefix under which the cluster mounts workspace files.
    for path in (template, "/Workspace" + template):
        folder = os.path.join(os.path.dirname(os.path.abspath(path)), "src")
        if os.path.isfile(os.path.join(folder, "gateway_functions.py")):
            if folder not in sys.path:
                sys.path.insert(0, folder)
            return folder
    raise FileNotFoundError(
        f"no src/gateway_functions.py beside {template}: --template must be the bundle's databricks-job.toml, "
        "deployed beside the src/ folder of this script"
    )


def run(spark, manifest, source_sql=None, on_output=None, on_ledger=None):
    """Runs `manifest` on `spark`. `source_sql(statement)` may replace a `source` statement's SQL
    (the parity test reads Parquet copies); `on_output(output, dataframe)` receives each output,
    materialised once and also registered as a view for the outputs that read it;
    `on_ledger(ledger, status, dataframe)` receives the ledger rows marking the window's dates
    `started` before the first output and `finished` after the last. The calls of the project's
    two JSON functions become Spark SQL built-in expressions (`gateway_functions.inline`), so
    no row goes through Python. gateway_functions must be importable (`use_modules_beside`)."""
    import gateway_functions

    for key, value in manifest["session_conf"]:
        spark.conf.set(key, value)
    for statement in manifest["statements"]:
        sql = statement["sql"]
        if statement["kind"] == "source" and source_sql is not None:
            sql = source_sql(statement) or sql
        spark.sql(gateway_functions.inline(sql))
    ledger = manifest["ledger"]
    if on_ledger is not None:
        on_ledger(ledger, "started", spark.sql(ledger["started"]))
    for output in manifest["outputs"]:
        frame = spark.sql(gateway_functions.inline(output["sql"])).cache()
        frame.count()
        frame.createOrReplaceTempView(output["name"])
        if on_output is not None:
            on_output(output, frame)
    if on_ledger is not None:
        on_ledger(ledger, "finished", spark.sql(ledger["finished"]))


def create_clustered(spark, table, view, column):
    """Creates `table` (when it does not exist) as a Delta table with `view`'s columns and
    liquid clustering on `column`, the date, rather than partitions by it: Databricks advises
    clustering for tables under 1 TB, which these are. A table an earlier release created
    partitioned stays so (replacing its dates still works; docs/DATABRICKS.md tells how to
    recreate it clustered)."""
    spark.sql(f"CREATE TABLE IF NOT EXISTS {table} USING DELTA CLUSTER BY ({column}) AS SELECT * FROM {view} WHERE false")


def replace_dates(spark, frame, table, column, condition):
    """Replaces the rows of `table` matching `condition` (the run's dates) with `frame`'s, in one
    Delta commit, creating the table clustered on `column` first."""
    view = "gateway_analytics_replacing"
    frame.createOrReplaceTempView(view)
    create_clustered(spark, table, view, column)
    frame.write.format("delta").mode("overwrite").option("replaceWhere", condition).saveAsTable(table)


def replace_output_dates(spark, target):
    """An `on_output` that replaces the window's dates of `<target>.<output>`."""

    def write(output, frame):
        column = output["partition_column"]
        condition = f"{column} BETWEEN DATE'{output['replace_from']}' AND DATE'{output['replace_to']}'"
        replace_dates(spark, frame, f"{target}.{output['name']}", column, condition)
        print(f"{output['name']}: {frame.count()} rows", flush=True)

    return write


def replace_ledger_dates(spark, target):
    """An `on_ledger` that replaces the run's dates of `<target>.computed_dates`."""

    def write(ledger, status, frame):
        dates = ", ".join(f"DATE'{d}'" for d in ledger["dates"])
        column = ledger["partition_column"]
        replace_dates(spark, frame, f"{target}.{ledger['name']}", column, f"{column} IN ({dates})")
        print(f"{ledger['name']}: {len(ledger['dates'])} dates {status}", flush=True)

    return write


def previous_day(first):
    """The ISO date before `first`."""
    return (datetime.date.fromisoformat(first) - datetime.timedelta(days=1)).isoformat()


def alert_history_source(spark, target, first):
    """A `source_sql` that reads `alert_history` (the alerts lifecycle's state) from the rows of
    `<target>.alerts` of the day before `first`, when that table has the lifecycle columns; the
    manifest's empty view otherwise (a first run, or a table of an earlier release)."""

    def source_sql(statement):
        if statement["name"] != "alert_history":
            return None
        table = f"{target}.alerts"
        if not spark.catalog.tableExists(table):
            return None
        spark.sql(statement["sql"])  # the empty view, for its columns
        columns = spark.table("alert_history").columns
        if not set(columns) <= set(spark.table(table).columns):
            return None
        return (
            f"CREATE OR REPLACE TEMPORARY VIEW alert_history AS SELECT {', '.join(columns)} FROM {table} "
            f"WHERE usage_date = DATE'{previous_day(first)}'"
        )

    return source_sql


def contiguous_ranges(dates):
    """(first, last) of each run of consecutive dates, in order (ISO date strings)."""
    days = sorted({datetime.date.fromisoformat(d) for d in dates})
    ranges = []
    for day in days:
        if ranges and ranges[-1][1] + datetime.timedelta(days=1) == day:
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [(first.isoformat(), last.isoformat()) for first, last in ranges]


def unfinished_dates(spark, target, date_from, date_to):
    """Dates outside the window that an earlier run left `started` in `<target>.computed_dates`."""
    table = f"{target}.computed_dates"
    if not spark.catalog.tableExists(table):
        return []
    rows = spark.sql(
        f"SELECT CAST(usage_date AS STRING) AS day FROM {table} WHERE status = 'started' "
        f"AND NOT (usage_date BETWEEN DATE'{date_from}' AND DATE'{date_to}')"
    ).collect()
    return [row["day"] for row in rows]


def main(argv=None):
    """The Databricks task: fills in the job file template like run_gateway_analytics.py, asks the
    binary for the manifest and writes the outputs into <catalog>.<schema>."""
    import tempfile

    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--template", required=True, help="the job file template (TOML)")
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--payload-table", default="")
    parser.add_argument("--traces-table", default="")
    parser.add_argument("--gateway-usage-table", default="", help="the copy of system.ai_gateway.usage")
    parser.add_argument("--gateway-payload-table", default="", help="a new AI Gateway payload table")
    parser.add_argument("--run-date", default="", help="UTC date the window is the day before of")
    parser.add_argument("--from", dest="date_from", default="")
    parser.add_argument("--to", dest="date_to", default="")
    args = parser.parse_args(argv)
    use_modules_beside(args.template)
    import run_gateway_analytics as launcher

    # The template's output.location is not used here: outputs become tables of the schema.
    values = {**vars(args), "output_location": f"/tmp/{args.catalog}.{args.schema}"}
    with open(launcher.workspace_path(args.template), encoding="utf-8") as f:
        job_file = launcher.render(f.read(), values)
    date_from, date_to = launcher.window(args.run_date, args.date_from, args.date_to)
    target = f"{args.catalog}.{args.schema}"

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("gateway-analytics").getOrCreate()
    with tempfile.TemporaryDirectory() as work:
        config = os.path.join(work, "job.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(job_file)

        def manifest_of(first, last):
            command = [launcher.find_binary(), "spark-sql", "--config", config, "--from", first, "--to", last]
            return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)

        # Dates an earlier run left half-written first, then the window.
        windows = contiguous_ranges(unfinished_dates(spark, target, date_from, date_to)) + [(date_from, date_to)]
        for first, last in windows:
            print(f"computing {first}..{last}", flush=True)
            run(
                spark,
                manifest_of(first, last),
                source_sql=alert_history_source(spark, target, first),
                on_output=replace_output_dates(spark, target),
                on_ledger=replace_ledger_dates(spark, target),
            )


if __name__ == "__main__":
    main()
