"""The staged-IO nightly end to end on a local pyspark: the demo fixtures registered as tables of
the session's catalog (spark_catalog.gateway.*), the launcher executed as Databricks runs it
(its source, no `__file__`) with `--io staged`, and every output table it writes back compared
row by row with the binary's own run on the same Delta tables. Two nights, the first run twice
(identical), the second with late usage rows on a date the first computed.

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
FIXTURES = os.path.join(ROOT, "fixtures", "demo")
INPUTS = {  # input table name in the catalog -> fixture folder
    "endpoint_usage": "endpoint_usage",
    "served_entities": "served_entities",
    "gateway_payload": "gateway_payload",
    "trace_logs": "trace_logs",
}
SCHEMA = "spark_catalog.gateway"

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


@unittest.skipIf(SparkSession is None, "pyspark is not installed (scripts/staged-io-test.sh installs it)")
class StagedNightly(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
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
        for table, folder in INPUTS.items():
            shutil.copytree(os.path.join(FIXTURES, folder), os.path.join(cls.data, table))
            frame = staged_io.read_local_delta(cls.spark, os.path.join(cls.data, table))
            frame.write.format("parquet").saveAsTable(f"{SCHEMA}.{table}")
        with open(os.path.join(JOBS, "databricks-job.toml"), encoding="utf-8") as f:
            template = f.read()
        # The job file's reference files: the demo's prices, teams and rate limits.
        template = template.replace(
            "# prices = \"/Volumes/${catalog}/${schema}/reference/prices.csv\"",
            f"prices = \"{FIXTURES}/prices.csv\"",
        ).replace("# teams = \"/Volumes/${catalog}/${schema}/reference/teams.csv\"", f"teams = \"{FIXTURES}/teams.csv\"").replace(
            "# rate_limits = \"/Volumes/${catalog}/${schema}/reference/rate_limits.json\"",
            f"rate_limits = \"{FIXTURES}/rate_limits.json\"",
        )
        cls.template = os.path.join(cls.work, "files", "databricks-job.toml")
        os.makedirs(os.path.dirname(cls.template))
        with open(cls.template, "w", encoding="utf-8") as f:
            f.write(template)
        # The bundle deploys jobs/src beside the template.
        shutil.copytree(HERE, os.path.join(cls.work, "files", "src"), ignore=shutil.ignore_patterns("__pycache__"))
        # The direct run's job file: the same template, on the fixture copies.
        direct = template.replace("${output_location}", os.path.join(cls.work, "direct"))
        for table in INPUTS:
            direct = direct.replace(f"uc://${{catalog}}.${{schema}}.{table}", os.path.join(cls.data, table))
        direct = direct.replace("uc://${payload_table}", os.path.join(cls.data, "gateway_payload"))
        direct = direct.replace("uc://${traces_table}", os.path.join(cls.data, "trace_logs"))
        # The new AI Gateway's tables are not named (the launcher drops their lines when empty).
        direct = "".join(
            line for line in direct.splitlines(keepends=True)
            if "${gateway_" not in line or line.lstrip().startswith("#")
        )
        cls.direct_config = os.path.join(cls.work, "direct.toml")
        with open(cls.direct_config, "w", encoding="utf-8") as f:
            f.write(direct)
        cls.logs = []

    @classmethod
    def tearDownClass(cls):
        cls.spark.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def launcher(self, run_date):
        """Runs jobs/src/run_gateway_analytics.py as a spark_python_task: its source executed as
        __main__ without __file__; returns its stderr."""
        with open(os.path.join(HERE, "run_gateway_analytics.py"), encoding="utf-8") as f:
            code = compile(f.read(), "<databricks run_gateway_analytics.py>", "exec")
        args = [
            f"--template={self.template}", "--catalog=spark_catalog", "--schema=gateway",
            "--output-location=", f"--payload-table={SCHEMA}.gateway_payload",
            f"--traces-table={SCHEMA}.trace_logs", f"--run-date={run_date}", "--from=", "--to=",
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
        self.assertIn("daily_spend", tables)
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

    def test_two_nights_equal_the_binarys_own_run(self):
        # Night 1: run date 2026-11-03, window 2026-11-02 (no ledger yet: no late day to redo).
        first = self.launcher("2026-11-03")
        self.assertIn("staged usage (spark_catalog.gateway.endpoint_usage): columns databricks_request_id", first)
        self.assertIn("staged served_entities", first)
        self.assertIn("bytes in all", first)
        self.assertNotIn("request,", first.split("staged payload")[1].split("\n")[0])  # request text is never staged
        self.direct("2026-11-02", "2026-11-02")
        self.assert_outputs_equal()
        # The proposed rate-limit files are kept where the job says (a volume on Databricks).
        latest = os.path.join(self.work, "recommendations", "latest")
        self.assertTrue(any(name.endswith(".json") for name in os.listdir(latest)), latest)
        before = {t: sorted(map(str, self.spark.table(f"{SCHEMA}.{t}").drop("run_id", "computed_at", "checked_at").collect()))
                  for t in ("daily_spend", "alerts", "computed_dates")}

        # The same night again: identical tables.
        self.launcher("2026-11-03")
        after = {t: sorted(map(str, self.spark.table(f"{SCHEMA}.{t}").drop("run_id", "computed_at", "checked_at").collect()))
                 for t in ("daily_spend", "alerts", "computed_dates")}
        self.assertEqual(before, after)

        # Late usage rows of 2026-11-02 land before night 2 (copies of rows of that day).
        usage_path = os.path.join(self.data, "endpoint_usage")
        usage = deltalake.DeltaTable(usage_path).to_pyarrow_table()
        day = pc.equal(pc.cast(usage["request_time"], "date32"), datetime.date(2026, 11, 2))
        late = usage.filter(day).slice(0, 40)
        ids = pc.binary_join_element_wise("late-", late["databricks_request_id"], "")
        late = late.set_column(late.column_names.index("databricks_request_id"), "databricks_request_id", ids)
        deltalake.write_deltalake(usage_path, late, mode="append")
        self.staged_io.read_local_delta(self.spark, usage_path).where("databricks_request_id LIKE 'late-%'") \
            .write.insertInto(f"{SCHEMA}.endpoint_usage")

        # Night 2: window 2026-11-03; the ledger and the alerts night 1 wrote back are read again,
        # and 2026-11-02 (one late day) is computed again with the late rows, as the binary's own
        # run computes it again from the usage table's new version.
        second = self.launcher("2026-11-04")
        self.assertRegex(second, r"staged computed_dates: \d+ files")
        self.assertIn("dates 2026-11-02..2026-11-02 computed again for late rows", second)
        self.assertRegex(second, r"staged alerts: 2 dates")  # the day before each computation (lifecycle)
        self.direct("2026-11-03", "2026-11-03")
        self.assert_outputs_equal()
        spend = self.spark.table(f"{SCHEMA}.daily_spend").where("usage_date = DATE'2026-11-02'")
        self.assertGreater(spend.groupBy().sum("requests").collect()[0][0], 0)


if __name__ == "__main__":
    unittest.main()
