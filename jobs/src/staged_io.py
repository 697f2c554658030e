"""Governed staged IO: the nightly run on a Databricks cluster reads and writes only through the
cluster's Unity Catalog identity (Spark), never with credentials of its own.

`run_gateway_analytics.py --io staged` calls `run_staged`, which
1. stages the ledger (`computed_dates`) and empty copies of the inputs to the driver's local
   disk and asks the binary for its plan (`gateway-analytics plan --format json`);
2. stages what that plan reads: the columns the queries use (the plan's `columns`) of the input
   rows of every computed date and its history (with the day of slack the queries allow), and
   (the new AI Gateway's usage over its recommendations' lookback, the plan's `reads`), and
   the earlier outputs history reads (`daily_spend` and `minute_demand` of the plan's
   `stored_history` dates, `alerts` of the day before each computation);
3. runs the binary on the staged copies (a job file pointing at them), which writes its outputs
   beside them;
4. writes the outputs back as managed Unity Catalog tables, each in one commit that replaces
   the dates the run computed (Delta `replaceWhere`), created clustered by their date column;
   the ledger is marked `started` for those dates first and written whole last, as the binary
   does it, so a run stopped half way is recomputed by the next.

A staged copy is a Delta table written without Delta's Spark writer: Spark writes Parquet files
(timestamps as TIMESTAMP_MICROS) and this module writes the one commit that adds them (the
schema is Spark's StructType JSON, which is Delta's `schemaString`). Reading a table the binary
wrote replays its `_delta_log` commits. So the same code runs on Databricks and on a local
pyspark without Delta's jars (jobs/src/test_staged_io.py).

Staged copies are new tables each night (version 0), so the binary's own detection of late rows
from input versions finds none: instead every night computes again the `late_days` dates before
the window (their ledger rows are staged as unfinished, so the plan recomputes them as it does
dates with late rows), the days the copy task reads again for late rows.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

LEDGER = "computed_dates"
# Output tables partitioned by the window's dates; the rate-limit recommendations (of both
# gateways) by their as-of date.
AS_OF_OUTPUTS = {"rate_limit_recommendations": "as_of_date", "ai_gateway_rate_limit_recommendations": "as_of_date"}
DATE_COLUMN = "usage_date"
# The inputs a staged run can copy, and how their rows fall on dates.
TIME_COLUMN = {
    "usage": "request_time",
    "payload": "request_time",
    "traces": "request_time",
    "gateway_usage": "event_time",
    "gateway_payload": "event_time",
}
UNDATED_INPUTS = ("served_entities",)


def log(message):
    print(f"staged_io: {message}", file=sys.stderr, flush=True)


# ---- Delta tables without Delta's Spark writer -------------------------------------------------


def _files_of(folder):
    """The Parquet data files Spark wrote under `folder`, relative to it."""
    found = []
    for root, _, names in os.walk(folder):
        if "_delta_log" in root:
            continue
        for name in names:
            if name.endswith(".parquet") and not name.startswith((".", "_")):
                found.append(os.path.relpath(os.path.join(root, name), folder))
    return sorted(found)


def _partition_values(relative, partition_columns):
    values = {}
    for part in relative.split(os.sep)[:-1]:
        name, _, value = part.partition("=")
        if name in partition_columns:
            values[name] = None if value == "__HIVE_DEFAULT_PARTITION__" else value
    return values


def _protocol(schema_json):
    text = json.dumps(schema_json)
    if '"timestamp_ntz"' in text:
        return {"minReaderVersion": 3, "minWriterVersion": 7,
                "readerFeatures": ["timestampNtz"], "writerFeatures": ["timestampNtz"]}
    return {"minReaderVersion": 1, "minWriterVersion": 2}


def write_local_delta(spark, frame, folder, partition_column=None):
    """Writes `frame` to the local folder `folder` as a new Delta table (one commit of Parquet
    files Spark wrote); returns (files, bytes). Needs a driver-only (single-node) session."""
    if os.path.exists(folder):
        shutil.rmtree(folder)
    previous = spark.conf.get("spark.sql.parquet.outputTimestampType", None)
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    try:
        writer = frame.write.mode("overwrite").format("parquet")
        if partition_column:
            writer = writer.partitionBy(partition_column)
        writer.save("file:" + os.path.abspath(folder))
    finally:
        if previous is None:
            spark.conf.unset("spark.sql.parquet.outputTimestampType")
        else:
            spark.conf.set("spark.sql.parquet.outputTimestampType", previous)
    partitions = [partition_column] if partition_column else []
    schema_json = json.loads(frame.schema.json())
    now = int(time.time() * 1000)
    actions = [
        {"commitInfo": {"timestamp": now, "operation": "WRITE", "engineInfo": "gateway-analytics staged_io"}},
        {"protocol": _protocol(schema_json)},
        {"metaData": {"id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
                      "schemaString": json.dumps(schema_json), "partitionColumns": partitions,
                      "configuration": {}, "createdTime": now}},
    ]
    total = 0
    files = _files_of(folder)
    for relative in files:
        size = os.path.getsize(os.path.join(folder, relative))
        total += size
        actions.append({"add": {"path": relative.replace(os.sep, "/"),
                                "partitionValues": _partition_values(relative, partitions),
                                "size": size, "modificationTime": now, "dataChange": True}})
    os.makedirs(os.path.join(folder, "_delta_log"))
    with open(os.path.join(folder, "_delta_log", "00000000000000000000.json"), "w", encoding="utf-8") as f:
        f.write("".join(json.dumps(action) + "\n" for action in actions))
    return len(files), total


def read_local_delta(spark, folder):
    """The current version of the local Delta table at `folder` (as delta-rs writes them: JSON
    commits, no deletion vectors or column mapping) as a DataFrame; None when there is none."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    log_dir = os.path.join(folder, "_delta_log")
    if not os.path.isdir(log_dir):
        return None
    if os.path.exists(os.path.join(log_dir, "_last_checkpoint")):
        raise RuntimeError(f"{folder} has a checkpoint: a staged table is read from its JSON commits only")
    metadata, files = None, {}
    for name in sorted(n for n in os.listdir(log_dir) if n.endswith(".json")):
        with open(os.path.join(log_dir, name), encoding="utf-8") as f:
            for line in f:
                action = json.loads(line) if line.strip() else {}
                if "metaData" in action:
                    metadata = action["metaData"]
                elif "add" in action:
                    if action["add"].get("deletionVector"):
                        raise RuntimeError(f"{folder}: deletion vectors are not read by staged_io")
                    files[action["add"]["path"]] = action["add"].get("partitionValues") or {}
                elif "remove" in action:
                    files.pop(action["remove"]["path"], None)
    if metadata is None:
        raise RuntimeError(f"{folder}: its Delta log has no metadata")
    schema = StructType.fromJson(json.loads(metadata["schemaString"]))
    partitions = metadata.get("partitionColumns") or []
    data_fields = [f for f in schema.fields if f.name not in partitions]
    data_schema = StructType(data_fields)
    frame = None
    groups = {}
    for path, values in files.items():
        groups.setdefault(tuple(values.get(p) for p in partitions), []).append(path)
    for key, paths in sorted(groups.items(), key=lambda kv: str(kv[0])):
        uris = ["file:" + os.path.join(os.path.abspath(folder), p) for p in sorted(paths)]
        part = spark.read.schema(data_schema).parquet(*uris).select(*[F.col(f"`{f.name}`") for f in data_fields])
        for column, value in zip(partitions, key):
            part = part.withColumn(column, F.lit(value).cast(schema[column].dataType))
        part = part.select(*[F.col(f"`{f.name}`") for f in schema.fields])
        frame = part if frame is None else frame.unionByName(part)
    if frame is None:
        frame = spark.createDataFrame([], schema)
    return frame


# ---- Unity Catalog tables ----------------------------------------------------------------------


def quote(name):
    """A dotted table name with each part quoted as an identifier."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))


def table_or_none(spark, name):
    from pyspark.sql.utils import AnalysisException

    try:
        return spark.table(quote(name))
    except AnalysisException:
        return None


def date_list(dates):
    return ", ".join(f"DATE'{d}'" for d in sorted(dates))


class DeltaTables:
    """Writes output tables as managed Delta tables in Unity Catalog: created clustered by their
    date column, the run's dates replaced in one commit (`replaceWhere`)."""

    def __init__(self, spark):
        self.spark = spark

    def replace_dates(self, name, frame, column, dates):
        view = "staged_io_rows"
        frame.createOrReplaceTempView(view)
        self.spark.sql(
            f"CREATE TABLE IF NOT EXISTS {quote(name)} CLUSTER BY ({quote(column)}) AS SELECT * FROM {view} WHERE false"
        )
        (frame.write.format("delta").mode("overwrite")
         .option("replaceWhere", f"{quote(column)} IN ({date_list(dates)})")
         .saveAsTable(quote(name)))


class ParquetTables:
    """The same replacements on a catalog without Delta (a local pyspark for tests): the table is
    rewritten whole with its other dates' rows kept. Not atomic; not for production."""

    def __init__(self, spark):
        self.spark = spark

    def replace_dates(self, name, frame, column, dates):
        from pyspark.sql import functions as F

        existing = table_or_none(self.spark, name)
        if existing is not None:
            kept = existing.where(~F.col(column).isin(list(sorted(dates)))).localCheckpoint()
            frame = kept.unionByName(frame)
        frame.localCheckpoint().write.format("parquet").mode("overwrite").saveAsTable(quote(name))


def writer_for(spark):
    """DeltaTables on Databricks (or a session with Delta's extension), else ParquetTables."""
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION") or "delta" in extensions.lower():
        return DeltaTables(spark)
    log("this Spark session has no Delta: output tables are written as Parquet tables (for tests, not atomic)")
    return ParquetTables(spark)


# ---- the run ----------------------------------------------------------------------------------


def stage_job_file(job_file, output_dir):
    """The job file with each `uc://` input replaced by a placeholder for its staged copy (filled
    in by `with_paths`) and the output location by the local output folder; returns (job file,
    {input: table name}). Inputs that are not `uc://` (files in a volume) are read as they are."""
    tables, lines, section = {}, [], ""
    for line in job_file.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        if section == "[inputs]" and not stripped.startswith("#") and "=" in stripped:
            name, _, value = stripped.partition("=")
            name, value = name.strip(), value.strip().strip('"')
            if value.startswith("uc://"):
                tables[name] = value[len("uc://"):]
                line = f'{name} = "PENDING/{name}"\n'
        if section == "[output]" and stripped.startswith("location") and "=" in stripped:
            line = f'location = "{output_dir}"\n'
        lines.append(line)
    unsupported = set(tables) - set(TIME_COLUMN) - set(UNDATED_INPUTS)
    if unsupported:
        raise ValueError(
            "staged IO copies usage, payload, traces, served_entities, gateway_usage and gateway_payload; "
            f"the job file also names {sorted(unsupported)}"
        )
    return "".join(lines), tables


def with_paths(job_file, paths):
    """The staged job file with each input's placeholder replaced by its path."""
    for name, path in paths.items():
        job_file = job_file.replace(f'"PENDING/{name}"', json.dumps(path))
    return job_file


def input_filter(input_name, columns, low, high):
    """The SQL condition selecting the rows of an input that dates [low, high] (with history) read:
    the queries read the inputs' time column over the dates with a day of slack either side (request
    matching), the payload's request_date too, and count rows without a time (data_quality)."""
    if input_name in UNDATED_INPUTS:
        return "true"
    time_column = TIME_COLUMN[input_name]
    start = (low - datetime.timedelta(days=1)).isoformat()
    end = (high + datetime.timedelta(days=2)).isoformat()
    condition = f"(`{time_column}` IS NULL OR (`{time_column}` >= TIMESTAMP'{start} 00:00:00' AND `{time_column}` < TIMESTAMP'{end} 00:00:00'))"
    if "request_date" in columns:
        condition += f" AND (`request_date` IS NULL OR `request_date` BETWEEN DATE'{start}' AND DATE'{(high + datetime.timedelta(days=1)).isoformat()}')"
    return condition


def input_dates(plan, input_name, low, high):
    """The dates [low, high] (every computed date and its history), widened to the rows the
    plan's segments read of `input_name` (`reads[].from/to`): the new AI Gateway's usage rows of
    its recommendations' lookback, read from the usage table itself."""
    for segment in plan["segments"]:
        for read in segment.get("reads", []):
            if read["input"] == input_name and read.get("from") and read.get("to"):
                low = min(low, datetime.date.fromisoformat(read["from"]))
                high = max(high, datetime.date.fromisoformat(read["to"]))
    return low, high


def computed_dates(plan):
    """(every date the plan computes, the as-of dates it writes)."""
    dates, as_of = set(), set()
    for segment in plan["segments"]:
        first = datetime.date.fromisoformat(segment["window"]["from"])
        last = datetime.date.fromisoformat(segment["window"]["to"])
        day = first
        while day <= last:
            dates.add(day)
            day += datetime.timedelta(days=1)
        if segment["writes_as_of"]:
            as_of.add(last)
    return dates, as_of


def history_dates(plan):
    """The dates of each earlier output the plan's computations read."""
    stored = {datetime.date.fromisoformat(d) for s in plan["segments"] for d in s["stored_history"]}
    before = {datetime.date.fromisoformat(s["window"]["from"]) - datetime.timedelta(days=1) for s in plan["segments"]}
    return {"daily_spend": stored, "minute_demand": stored, "alerts": before}


def run_staged(spark, job_file, catalog, schema, run_args, binary, work, env, late_days=0, tables=None):
    """Runs the nightly through staged copies; returns the binary's exit code. `run_args` are the
    `run` options after `--config` (window, alerts, extra options); the `late_days` dates before
    the window that the ledger has are computed again; `tables` writes the outputs (DeltaTables
    on Databricks)."""
    from pyspark.sql import functions as F

    if any(a.startswith("--only") for a in run_args):
        raise ValueError("staged IO runs every output: --only is not supported with --io staged")
    tables = tables or writer_for(spark)
    master = spark.conf.get("spark.master", "")
    if not master.startswith("local"):
        raise RuntimeError(f"staged IO writes to the driver's local disk: it needs a single-node cluster (spark.master is {master!r})")
    output_dir = os.path.join(work, "outputs")
    staged_dir = os.path.join(work, "inputs")
    os.makedirs(output_dir, exist_ok=True)
    plan_job, input_tables = stage_job_file(job_file, output_dir)
    output_name = lambda table: f"{catalog}.{schema}.{table}"  # noqa: E731

    # 1. The ledger and empty inputs, for the plan.
    ledger = table_or_none(spark, output_name(LEDGER))
    if ledger is not None:
        if late_days > 0 and "--from" in run_args:
            # The staged copies are new tables each night: the binary cannot see late rows in
            # their versions. The late days' ledger rows are staged as unfinished, so the plan
            # computes those dates again (with their as-of recommendations, if they have them).
            first = datetime.date.fromisoformat(run_args[run_args.index("--from") + 1])
            late = [first - datetime.timedelta(days=n) for n in range(late_days, 0, -1)]
            ledger = ledger.withColumn(
                "status",
                F.when(F.col(DATE_COLUMN).isin(late) & (F.col("status") == "finished"), F.lit("started"))
                .otherwise(F.col("status")),
            )
            log(f"dates {late[0]}..{late[-1]} computed again for late rows")
        files, size = write_local_delta(spark, ledger, os.path.join(output_dir, LEDGER), DATE_COLUMN)
        log(f"staged {LEDGER}: {files} files, {size} bytes")
    empty_paths = {}
    for name, table in input_tables.items():
        source = table_or_none(spark, table)
        if source is None:
            raise RuntimeError(f"input {name}: table {table} is not readable (does it exist, and has the job SELECT on it?)")
        empty_paths[name] = os.path.join(work, "empty", name)
        write_local_delta(spark, source.limit(0), empty_paths[name])
    config = os.path.join(work, "plan.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(with_paths(plan_job, empty_paths))
    window_args = []
    for flag in ("--from", "--to"):
        if flag in run_args:
            window_args += [flag, run_args[run_args.index(flag) + 1]]
    command = [binary, "plan", "--config", config, *window_args, "--format", "json"]
    log(" ".join(command))
    planned = subprocess.run(command, check=False, env=env, stdout=subprocess.PIPE)
    if planned.returncode != 0:
        return planned.returncode if planned.returncode > 0 else 1
    plan = json.loads(planned.stdout)

    # 2. What the plan reads.
    dates, as_of = computed_dates(plan)
    low = min(min(datetime.date.fromisoformat(s["inputs_from"]) for s in plan["segments"]), min(dates))
    high = max(dates)
    columns = {i["input"]: i["columns"] for i in plan["inputs"]}
    paths, staged_bytes = {}, 0
    for name, table in input_tables.items():
        # A column the contract reads but the table lacks (an optional column of the new AI
        # Gateway's older schema versions) is left out: the binary reads it as NULL, or refuses
        # a required one naming it.
        present = set(spark.table(quote(table)).columns)
        wanted = [c for c in columns[name] if c in present]
        condition = input_filter(name, wanted, *input_dates(plan, name, low, high))
        frame = spark.table(quote(table)).where(condition).select(*[F.col(f"`{c}`") for c in wanted])
        paths[name] = os.path.join(staged_dir, name)
        files, size = write_local_delta(spark, frame, paths[name])
        staged_bytes += size
        log(f"staged {name} ({table}): columns {', '.join(wanted)}; rows where {condition}: {files} files, {size} bytes")
    for output, wanted_dates in history_dates(plan).items():
        source = table_or_none(spark, output_name(output)) if wanted_dates else None
        if source is None:
            continue
        frame = source.where(F.col(DATE_COLUMN).isin(sorted(wanted_dates)))
        files, size = write_local_delta(spark, frame, os.path.join(output_dir, output), DATE_COLUMN)
        staged_bytes += size
        log(f"staged {output}: {len(wanted_dates)} dates, {files} files, {size} bytes")
    log(f"staged {staged_bytes} bytes in all")

    # 3. The run on the staged copies.
    config = os.path.join(work, "job.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(with_paths(plan_job, paths))
    command = [binary, "run", "--config", config, *run_args]
    log(" ".join(command))
    code = subprocess.run(command, check=False, env=env).returncode
    if code not in (0, 3):  # 3: alerts at or over --fail-on fired, after every output was written
        return code if code >= 0 else 1

    # 4. The outputs back into Unity Catalog: the ledger marks the dates started, each output
    # replaces its dates, then the ledger is written whole.
    staged_ledger = read_local_delta(spark, os.path.join(output_dir, LEDGER))
    if staged_ledger is None:
        return code
    staged_ledger = staged_ledger.localCheckpoint()
    # Every date of the ledger (it was staged whole): replacing them all rewrites it whole.
    ledger_dates = [row[0] for row in staged_ledger.select(DATE_COLUMN).distinct().collect()]
    started = staged_ledger.withColumn(
        "status",
        F.when(F.col(DATE_COLUMN).isin(sorted(dates)), F.lit("started")).otherwise(F.col("status")),
    )
    tables.replace_dates(output_name(LEDGER), started, DATE_COLUMN, ledger_dates)
    for output in plan["outputs"]:
        frame = read_local_delta(spark, os.path.join(output_dir, output))
        if frame is None:
            continue
        column = AS_OF_OUTPUTS.get(output, DATE_COLUMN)
        replaced = as_of if output in AS_OF_OUTPUTS else dates
        if not replaced:
            continue
        rows = frame.where(F.col(column).isin(sorted(replaced)))
        tables.replace_dates(output_name(output), rows, column, replaced)
        log(f"wrote {output_name(output)}: dates {min(replaced)}..{max(replaced)} replaced")
    tables.replace_dates(output_name(LEDGER), staged_ledger, DATE_COLUMN, ledger_dates)
    log(f"wrote {output_name(LEDGER)}")
    return code
