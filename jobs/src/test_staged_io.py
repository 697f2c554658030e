"""The staged-IO nightly end to end on a local pyspark: a data set's tables registered as tables
of the session's catalog (spark_catalog.gateway.*), the launcher executed as Databricks runs it
(its source, no `__file__`) with `--io staged`, and every output table it writes back compared
row by row with the binary's own run on the same Delta tables. Two nights, the first run twice
(identical), the second with late usage rows on a date the first computed. Two data sets: the
demo fixtures (the serving-endpoint gateway, with traces), and fixtures/ai_gateway, a job of
both gateways whose new AI Gateway (Beta) usage table has the nested STRUCT, MAP and ARRAY
columns of `system.ai_gateway.usage` (routing attempts, token details, request tags, session and
MCP metadata), so that they go through Spark's staging and back.

StagedNightly needs pyspark, pyarrow and deltalake (the venv of scripts/spark-parity.sh) and the binary:
scripts/staged-io-test.sh runs it. Skipped where pyspark is not installed (the plain
`python3 -m unittest discover -s jobs/src` step).

The local catalog has no Delta (its jars are not on PyPI): output tables are Parquet tables there,
written by staged_io.ParquetTables; Databricks runs DeltaTables (replaceWhere). Everything else —
the staging, the Delta copies, the binary's run on them, reading its outputs back — is the code
Databricks runs.
"""

import contextlib
import datetime
import decimal
import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = os.path.dirname(HERE)
ROOT = os.path.dirname(JOBS)
SCHEMA = "spark_catalog.gateway"
# The launcher's table parameters (and the template's placeholders) of optional tables.
TABLE_PARAMETERS = ("payload_table", "traces_table", "gateway_usage_table", "gateway_payload_table")

try:
    import deltalake
    import pyarrow.compute as pc
    from pyspark.sql import SparkSession
except ImportError:  # the system python3 of the plain unittest step
    SparkSession = None


def normalized(value):
    """A value as both readers give it, comparable and sortable."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return ("ts", value.isoformat())
    if isinstance(value, dict):
        return ("map", tuple(sorted((str(k), normalized(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, tuple) and len(v) == 2 for v in value) and value:
            return ("map", tuple(sorted((str(k), normalized(v)) for k, v in value)))
        return ("list", tuple(normalized(v) for v in value))
    if isinstance(value, decimal.Decimal):
        return ("dec", str(value.normalize()) if value == value else "nan")
    if isinstance(value, (datetime.date,)):
        return ("date", value.isoformat())
    return (type(value).__name__, repr(value))


def rows_of(records, columns):
    return sorted(tuple(normalized(r.get(c)) for c in columns) for r in records)


class StagedJobFile(unittest.TestCase):
    """The parts of staged_io that need no Spark (run by the plain unittest step too)."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, HERE)
        import staged_io

        cls.staged_io = staged_io

    def test_uc_inputs_become_placeholders_and_the_output_a_local_folder(self):
        job = '[inputs]\nusage = "uc://c.s.endpoint_usage"\nprices = "/Volumes/c/s/r/prices.csv"\n' \
              '[output]\nlocation = "staged"\n'
        staged, tables = self.staged_io.stage_job_file(job, "/local_disk0/tmp/x/outputs")
        self.assertEqual(tables, {"usage": "c.s.endpoint_usage"})
        self.assertIn('prices = "/Volumes/c/s/r/prices.csv"', staged)  # read in place
        self.assertIn('location = "/local_disk0/tmp/x/outputs"', staged)
        filled = self.staged_io.with_paths(staged, {"usage": "/local_disk0/tmp/x/inputs/usage"})
        self.assertIn('usage = "/local_disk0/tmp/x/inputs/usage"', filled)

    def test_an_input_staged_io_cannot_copy_is_refused_by_name(self):
        job = '[inputs]\nusage = "uc://c.s.u"\nbilling = "uc://c.s.g"\n[output]\nlocation = "x"\n'
        with self.assertRaisesRegex(ValueError, "billing"):
            self.staged_io.stage_job_file(job, "/tmp/out")

    def test_rows_read_with_a_day_of_slack_and_rows_without_a_time(self):
        low, high = datetime.date(2026, 11, 2), datetime.date(2026, 11, 3)
        usage = self.staged_io.input_filter("usage", ["request_time"], low, high)
        self.assertIn("`request_time` IS NULL", usage)
        self.assertIn("TIMESTAMP'2026-11-01 00:00:00'", usage)
        self.assertIn("< TIMESTAMP'2026-11-05 00:00:00'", usage)
        payload = self.staged_io.input_filter("payload", ["request_time", "request_date"], low, high)
        self.assertIn("`request_date` BETWEEN DATE'2026-11-01' AND DATE'2026-11-04'", payload)
        self.assertEqual(self.staged_io.input_filter("served_entities", ["served_entity_id"], low, high), "true")

    def test_the_new_gateways_usage_is_staged_over_its_recommendations_lookback(self):
        # A nightly plan whose history comes from earlier outputs: usage rows from the window on,
        # the new AI Gateway's usage rows from the lookback's first day (its recommendations read
        # the usage table itself).
        plan = {"segments": [{"window": {"from": "2026-11-20", "to": "2026-11-20"}, "reads": [
            {"input": "usage", "from": "2026-11-20", "to": "2026-11-20"},
            {"input": "served_entities", "from": None, "to": None},
            {"input": "gateway_usage", "from": "2026-11-07", "to": "2026-11-20"},
        ]}]}
        day = datetime.date(2026, 11, 20)
        self.assertEqual(self.staged_io.input_dates(plan, "usage", day, day), (day, day))
        self.assertEqual(self.staged_io.input_dates(plan, "served_entities", day, day), (day, day))
        self.assertEqual(self.staged_io.input_dates(plan, "gateway_usage", day, day), (datetime.date(2026, 11, 7), day))
        self.assertEqual(self.staged_io.AS_OF_OUTPUTS["ai_gateway_rate_limit_recommendations"], "as_of_date")


class DataSet:
    """A data set the staged nightly runs on: its fixture folder, its tables (catalog table ->
    fixture folder), the launcher's table parameters it sets (parameter -> catalog table; the
    others are empty and their template lines dropped), its reference files, extra job-file
    settings, its two nights' run dates, and the late rows night 2 finds (catalog table, time
    column, id columns, date)."""

    def __init__(self, folder, inputs, parameters, references, extra, nights, late):
        self.fixtures = os.path.join(ROOT, "fixtures", folder)
        self.inputs = inputs
        self.parameters = parameters
        self.references = references
        self.extra = extra
        self.nights = nights
        self.late = late


DEMO = DataSet(
    "demo",
    {"endpoint_usage": "endpoint_usage", "served_entities": "served_entities",
     "gateway_payload": "gateway_payload", "trace_logs": "trace_logs"},
    {"payload_table": "gateway_payload", "traces_table": "trace_logs"},
    {"prices": "prices.csv", "teams": "teams.csv", "rate_limits": "rate_limits.json"},
    "",
    ("2026-11-03", "2026-11-04"),
    ("endpoint_usage", "request_time", ("databricks_request_id",), datetime.date(2026, 11, 2)),
)

# Both gateways in one job: the serving-endpoint tables and the new AI Gateway's (Beta) usage
# and payload tables of one simulated world, 2026-11-01..2026-11-02 (no traces).
BOTH_GATEWAYS = DataSet(
    "ai_gateway",
    {"endpoint_usage": "endpoint_usage", "served_entities": "served_entities",
     "gateway_payload": "gateway_payload", "ai_gateway_usage": "ai_gateway_usage",
     "ai_gateway_payload": "ai_gateway_payload"},
    {"payload_table": "gateway_payload", "gateway_usage_table": "ai_gateway_usage",
     "gateway_payload_table": "ai_gateway_payload"},
    {"prices": "prices.csv", "teams": "teams.csv", "rate_limits": "rate_limits.json",
     "gateway_rate_limits": "gateway_rate_limits.json"},
    # As jobs/ai_gateway.toml: request tags read (a MAP column), fallback alerts that fire.
    '\n[ai_gateway]\ntag_keys = ["project", "env"]\nfallback_min_attempts = 5\n'
    "fallback_failure_share = 0.2\nfallback_rescue_share = 0.1\n",
    ("2026-11-02", "2026-11-03"),
    ("ai_gateway_usage", "event_time", ("request_id", "invocation_id"), datetime.date(2026, 11, 1)),
)


def day_before(run_date):
    return (datetime.date.fromisoformat(run_date) - datetime.timedelta(days=1)).isoformat()


@unittest.skipIf(SparkSession is None, "pyspark is not installed (scripts/staged-io-test.sh installs it)")
class StagedNightly(unittest.TestCase):
    """The demo fixtures (the serving-endpoint gateway)."""

    DATA = DEMO

    @classmethod
    def setUpClass(cls):
        data_set = cls.DATA
        cls.binary = os.environ.get("GATEWAY_ANALYTICS_BINARY") or shutil.which("gateway-analytics")
        if not cls.binary:
            raise unittest.SkipTest("set GATEWAY_ANALYTICS_BINARY to the built binary")
        cls.work = tempfile.mkdtemp(prefix="staged-io-")
        # The launcher finds the binary on PATH, as pip's scripts folder puts it on Databricks.
        bin_dir = os.path.join(cls.work, "bin")
        os.makedirs(bin_dir)
        os.symlink(os.path.abspath(cls.binary), os.path.join(bin_dir, "gateway-analytics"))
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ["PATH"]
        cls.spark = (
            SparkSession.builder.master("local[2]")
            .appName("staged-io-test")
            .config("spark.sql.warehouse.dir", os.path.join(cls.work, "warehouse"))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.adaptive.enabled", "false")  # tiny data, as in spark_parity.py
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        sys.path.insert(0, HERE)
        import staged_io

        cls.staged_io = staged_io
        # The inputs: copies of the fixtures (the direct run reads them, and gets the late rows),
        # registered as catalog tables for the staged run.
        cls.data = os.path.join(cls.work, "data")
        cls.spark.sql("CREATE DATABASE IF NOT EXISTS gateway")
        for table, folder in data_set.inputs.items():
            shutil.copytree(os.path.join(data_set.fixtures, folder), os.path.join(cls.data, table))
            frame = staged_io.read_local_delta(cls.spark, os.path.join(cls.data, table))
            frame.write.format("parquet").saveAsTable(f"{SCHEMA}.{table}")
        with open(os.path.join(JOBS, "databricks-job.toml"), encoding="utf-8") as f:
            template = f.read()
        # The job file's reference files: the data set's prices, teams and rate limits.
        for name, file in data_set.references.items():
            line = f'# {name} = "/Volumes/${{catalog}}/${{schema}}/reference/{file}"'
            assert line in template, line
            template = template.replace(line, f'{name} = "{data_set.fixtures}/{file}"')
        template += data_set.extra
        cls.template = os.path.join(cls.work, "files", "databricks-job.toml")
        os.makedirs(os.path.dirname(cls.template))
        with open(cls.template, "w", encoding="utf-8") as f:
            f.write(template)
        # The bundle deploys jobs/src beside the template.
        shutil.copytree(HERE, os.path.join(cls.work, "files", "src"), ignore=shutil.ignore_patterns("__pycache__"))
        # The direct run's job file: the same template, on the fixture copies; the lines of the
        # tables the data set lacks are dropped, as the launcher drops them when empty.
        direct = template.replace("${output_location}", os.path.join(cls.work, "direct"))
        for table in data_set.inputs:
            direct = direct.replace(f"uc://${{catalog}}.${{schema}}.{table}", os.path.join(cls.data, table))
        for parameter, table in data_set.parameters.items():
            direct = direct.replace(f"uc://${{{parameter}}}", os.path.join(cls.data, table))
        absent = [f"${{{p}}}" for p in TABLE_PARAMETERS if p not in data_set.parameters]
        direct = "".join(
            line for line in direct.splitlines(keepends=True)
            if not any(p in line for p in absent) or line.lstrip().startswith("#")
        )
        cls.direct_config = os.path.join(cls.work, "direct.toml")
        with open(cls.direct_config, "w", encoding="utf-8") as f:
            f.write(direct)

    @classmethod
    def tearDownClass(cls):
        cls.spark.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def launcher(self, run_date):
        """Runs jobs/src/run_gateway_analytics.py as a spark_python_task: its source executed as
        __main__ without __file__; returns its stderr."""
        with open(os.path.join(HERE, "run_gateway_analytics.py"), encoding="utf-8") as f:
            code = compile(f.read(), "<databricks run_gateway_analytics.py>", "exec")
        tables = [
            f"--{p.replace('_', '-')}=" + (f"{SCHEMA}.{self.DATA.parameters[p]}" if p in self.DATA.parameters else "")
            for p in TABLE_PARAMETERS
        ]
        args = [
            f"--template={self.template}", "--catalog=spark_catalog", "--schema=gateway",
            "--output-location=", *tables, f"--run-date={run_date}", "--from=", "--to=",
            "--alerts-jsonl=", "--io=staged", "--late-days=1", f"--work-dir={self.work}",
            f"--recommendations-dir={self.work}/recommendations",
        ]
        namespace = {"__name__": "__main__"}
        saved = sys.argv[:]
        sys.argv[:] = ["run_gateway_analytics.py", *args]
        stderr = io.StringIO()
        status = 0
        try:
            with contextlib.redirect_stderr(stderr):
                exec(code, namespace)
        except SystemExit as e:
            status = e.code
        finally:
            sys.argv[:] = saved
        self.assertNotIn("__file__", namespace)
        self.assertEqual(status, 0, stderr.getvalue())
        return stderr.getvalue()

    def direct(self, date_from, date_to):
        subprocess.run(
            [self.binary, "run", "--config", self.direct_config, "--from", date_from, "--to", date_to, "--format", "none"],
            check=True, env={**os.environ, "NO_COLOR": "1"}, stdout=subprocess.DEVNULL,
        )

    def assert_outputs_equal(self):
        direct_root = os.path.join(self.work, "direct")
        tables = sorted(
            t for t in os.listdir(direct_root) if os.path.isdir(os.path.join(direct_root, t, "_delta_log"))
        )
        self.assertIn("computed_dates", tables)
        for table in tables:
            expected = deltalake.DeltaTable(os.path.join(direct_root, table)).to_pyarrow_table()
            columns = expected.column_names
            if table == "computed_dates":  # the run's own id and times, and the versions of its copies
                columns = ["usage_date", "status", "outputs", "price_version", "teams_version", "mode",
                           "definitions_version", "recommendations_as_of"]
            staged = self.spark.table(f"{SCHEMA}.{table}")
            self.assertEqual(sorted(staged.columns), sorted(expected.column_names), table)
            want = rows_of(expected.to_pylist(), columns)
            got = rows_of([r.asDict(recursive=True) for r in staged.collect()], columns)
            self.assertEqual(len(got), len(want), f"{table}: rows")
            for i, (g, w) in enumerate(zip(got, want)):
                self.assertEqual(g, w, f"{table}: row {i} of {len(want)} differs")
        return tables

    def check_first_night(self, log, tables):
        """What the first night's log and outputs must show for this data set."""
        self.assertIn("daily_spend", tables)
        self.assertIn("staged usage (spark_catalog.gateway.endpoint_usage): columns databricks_request_id", log)
        self.assertIn("staged served_entities", log)
        self.assertNotIn("request,", log.split("staged payload")[1].split("\n")[0])  # request text is never staged
        # The proposed rate-limit files are kept where the job says (a volume on Databricks).
        latest = os.path.join(self.work, "recommendations", "latest")
        self.assertTrue(any(name.endswith(".json") for name in os.listdir(latest)), latest)

    def add_late_rows(self):
        """Copies of rows of the late date with new ids, appended to the Delta table the direct
        run reads and inserted into the catalog table the staged run reads."""
        table, time_column, ids, day = self.DATA.late
        path = os.path.join(self.data, table)
        rows = deltalake.DeltaTable(path).to_pyarrow_table()
        late = rows.filter(pc.equal(pc.cast(rows[time_column], "date32"), day)).slice(0, 40)
        for column in ids:
            renamed = pc.binary_join_element_wise("late-", late[column], "")
            late = late.set_column(late.column_names.index(column), column, renamed)
        deltalake.write_deltalake(path, late, mode="append")
        self.staged_io.read_local_delta(self.spark, path).where(f"{ids[0]} LIKE 'late-%'") \
            .write.insertInto(f"{SCHEMA}.{table}")

    def test_two_nights_equal_the_binarys_own_run(self):
        first_night, second_night = self.DATA.nights
        # Night 1: the window is the day before the run date (no ledger yet: no late day to redo).
        first = self.launcher(first_night)
        self.assertIn("bytes in all", first)
        self.direct(day_before(first_night), day_before(first_night))
        self.check_first_night(first, self.assert_outputs_equal())
        tables = ("alerts", "computed_dates", "daily_spend")
        before = {t: sorted(map(str, self.spark.table(f"{SCHEMA}.{t}").drop("run_id", "computed_at", "checked_at").collect()))
                  for t in tables}

        # The same night again: identical tables.
        self.launcher(first_night)
        after = {t: sorted(map(str, self.spark.table(f"{SCHEMA}.{t}").drop("run_id", "computed_at", "checked_at").collect()))
                 for t in tables}
        self.assertEqual(before, after)

        # Late rows of the first night's date land before night 2.
        self.add_late_rows()

        # Night 2: the next window; the ledger and the alerts night 1 wrote back are read again,
        # and the late date is computed again with the late rows, as the binary's own run
        # computes it again from the input table's new version.
        second = self.launcher(second_night)
        late_day = self.DATA.late[3]
        self.assertRegex(second, r"staged computed_dates: \d+ files")
        self.assertIn(f"dates {late_day}..{late_day} computed again for late rows", second)
        self.assertRegex(second, r"staged alerts: 2 dates")  # the day before each computation (lifecycle)
        self.direct(day_before(second_night), day_before(second_night))
        self.assert_outputs_equal()
        spend = self.spark.table(f"{SCHEMA}.daily_spend").where(f"usage_date = DATE'{late_day}'")
        self.assertGreater(spend.groupBy().sum("requests").collect()[0][0], 0)


class StagedNightlyBothGateways(StagedNightly):
    """fixtures/ai_gateway: the serving-endpoint gateway and the new AI Gateway (Beta) in one job,
    the late rows in the new gateway's usage table."""

    DATA = BOTH_GATEWAYS

    def check_first_night(self, log, tables):
        for table in ("daily_spend", "ai_gateway_daily_spend", "fallbacks", "agent_sessions", "mcp_usage",
                      "tag_spend", "ai_gateway_rate_limit_recommendations"):
            self.assertIn(table, tables)
        # The usage table's nested columns are staged as they are (STRUCT, MAP, ARRAY of STRUCT).
        staged = log.split("staged gateway_usage (spark_catalog.gateway.ai_gateway_usage): columns ")[1].split(";")[0]
        for column in ("request_tags", "token_details", "routing_information", "session_metadata", "mcp_metadata"):
            self.assertIn(column, staged.split(", "))
        self.assertIn("staged gateway_payload (spark_catalog.gateway.ai_gateway_payload)", log)
        # The outputs that read them have rows, so that their equality above means something.
        def count(table, where="true"):
            return self.spark.table(f"{SCHEMA}.{table}").where(where).count()

        self.assertGreater(count("fallbacks", "failed_attempts > 0"), 0)  # routing_information.attempts
        self.assertGreater(count("agent_sessions", "subagents > 0"), 0)  # session_metadata
        self.assertGreater(count("mcp_usage"), 0)  # mcp_metadata
        self.assertGreater(count("tag_spend", "gateway = 'ai_gateway' AND tag_value NOT IN ('(empty)', '(untagged)')"), 0)  # request_tags
        # Both gateways' proposed rate-limit files are kept: the new gateway's under ai_gateway/.
        for folder in ("latest", os.path.join("ai_gateway", "latest")):
            latest = os.path.join(self.work, "recommendations", folder)
            self.assertTrue(any(name.endswith(".json") for name in os.listdir(latest)), latest)


if __name__ == "__main__":
    unittest.main()
