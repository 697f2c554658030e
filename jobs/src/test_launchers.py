"""The Databricks launchers run the way the platform runs a `spark_python_task` file: their source
text executed as `__main__` with no `__file__` in its globals (as exec and IPython-based task
runners do), from a working directory that is not theirs and with their folder not on
`sys.path`. A stand-in `gateway-analytics` executable on PATH records what it is given; the
Spark runner gets a stand-in `pyspark` that records the SQL it is asked to run (the Spark SQL
parity test, scripts/spark-parity.sh, runs the runner's `run` on real pyspark), and the task's
identity comes from a stand-in of the Databricks SDK's runtime authentication.

    python3 -m unittest discover -s jobs/src -p 'test_*.py'
"""

import contextlib
import io
import json
import os
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = os.path.dirname(HERE)
TEMPLATE = os.path.join(JOBS, "databricks-job.toml")

# The stand-in binary: writes its arguments and the job file it was given to $FAKE_RECORD, prints
# a manifest for `spark-sql`, and exits with $FAKE_EXIT.
FAKE_BINARY = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    args = sys.argv[1:]
    config = open(args[args.index("--config") + 1]).read()
    auth = {{
        "host": os.environ.get("DATABRICKS_HOST"),
        "token_is_runtime_token": os.environ.get("DATABRICKS_TOKEN") == "runtime-token-of-the-task",
        "client_id": os.environ.get("DATABRICKS_CLIENT_ID"),
    }}
    with open(os.environ["FAKE_RECORD"], "a") as f:
        f.write(json.dumps({{"args": args, "config": config, "auth": auth}}) + "\\n")
    if args[0] == "spark-sql":
        print(json.dumps({{
            "session_conf": [["spark.sql.session.timeZone", "UTC"]],
            "statements": [{{"kind": "source", "name": "usage_source",
                            "sql": "CREATE TEMP VIEW usage_source AS SELECT 1"}},
                           {{"kind": "view", "name": "parsed",
                            "sql": "CREATE TEMP VIEW parsed AS SELECT gateway_usage(response) AS body FROM p"}}],
            "ledger": {{"name": "computed_dates", "partition_column": "usage_date", "dates": [],
                        "started": "SELECT 'started'", "finished": "SELECT 'finished'"}},
            "outputs": [],
        }}))
    sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
    """
)

# The stand-in pyspark: a session that records its SQL and configuration in FAKE_SPARK_LOG.
FAKE_PYSPARK = {
    "pyspark/__init__.py": "from . import cloudpickle\n",
    "pyspark/cloudpickle.py": "def register_pickle_by_value(module):\n    pass\n",
    "pyspark/sql/__init__.py": textwrap.dedent(
        """\
        import json, os

        def _log(kind, value):
            with open(os.environ["FAKE_SPARK_LOG"], "a") as f:
                f.write(json.dumps([kind, value]) + "\\n")

        class _Writer:
            def __getattr__(self, name):  # format, mode, option, partitionBy, clusterBy
                return lambda *args: (_log("write", [name, *args]), self)[1]
            def saveAsTable(self, name):
                _log("saveAsTable", name)

        class _Frame:
            write = _Writer()
            def cache(self):
                return self
            def count(self):
                return 0
            def collect(self):
                return []
            def createOrReplaceTempView(self, name):
                _log("view", name)

        class _Session:
            class conf:
                @staticmethod
                def set(key, value):
                    _log("conf", [key, value])
            class catalog:
                @staticmethod
                def tableExists(name):
                    _log("tableExists", name)
                    return False
            def sql(self, text):
                _log("sql", text)
                return _Frame()

        class _Builder:
            def appName(self, name):
                return self
            def getOrCreate(self):
                return _Session()

        class SparkSession:
            builder = _Builder()
        """
    ),
}


# The stand-in Databricks SDK: runtime authentication of the task's identity.
FAKE_SDK = {
    "databricks/__init__.py": "",
    "databricks/sdk/__init__.py": "",
    "databricks/sdk/core.py": textwrap.dedent(
        """\
        import os

        class Config:
            host = "https://adb-1.azuredatabricks.net"

            def __init__(self):
                if os.environ.get("FAKE_SDK_FAILS"):
                    raise ValueError("default auth: cannot configure default credentials")

            def authenticate(self):
                return {"Authorization": "Bearer runtime-token-of-the-task"}
        """
    ),
}


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


class AsDatabricksRunsIt(unittest.TestCase):
    """Each test executes a launcher's source text as `__main__` without `__file__`."""

    def setUp(self):
        self.work = tempfile.TemporaryDirectory()
        self.addCleanup(self.work.cleanup)
        root = self.work.name
        bin_dir = os.path.join(root, "bin")
        write(os.path.join(bin_dir, "gateway-analytics"), FAKE_BINARY.format(python=sys.executable), 0o755)
        self.record = os.path.join(root, "record.jsonl")
        self.spark_log = os.path.join(root, "spark.jsonl")
        self.elsewhere = os.path.join(root, "cwd")
        os.makedirs(self.elsewhere)
        saved_env, saved_path, saved_argv, saved_cwd = dict(os.environ), list(sys.path), list(sys.argv), os.getcwd()
        saved_modules = {name: sys.modules.pop(name) for name in list(sys.modules) if self._is_launcher_module(name)}

        def restore():
            os.environ.clear()
            os.environ.update(saved_env)
            sys.path[:] = saved_path
            sys.argv[:] = saved_argv
            os.chdir(saved_cwd)
            for name in list(sys.modules):
                if self._is_launcher_module(name):
                    del sys.modules[name]
            sys.modules.update(saved_modules)

        self.addCleanup(restore)
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        os.environ["FAKE_RECORD"] = self.record
        os.environ["FAKE_SPARK_LOG"] = self.spark_log
        # Neither this folder nor the working directory provide the launchers' siblings.
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
        os.chdir(self.elsewhere)

    @staticmethod
    def _is_launcher_module(name):
        return name in ("gateway_functions", "run_gateway_analytics", "spark_runner") or name.split(".")[0] in (
            "pyspark",
            "databricks",
        )

    def execute(self, script, args):
        """Runs jobs/src/<script> as the platform does; returns (exit code, stderr)."""
        with open(os.path.join(HERE, script), encoding="utf-8") as f:
            source = f.read()
        code = compile(source, f"<databricks {script}>", "exec")
        namespace = {"__name__": "__main__"}
        sys.argv[:] = [script, *args]
        stderr = io.StringIO()
        status = 0
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                exec(code, namespace)
            except SystemExit as e:
                status = e.code
        self.assertNotIn("__file__", namespace)
        return status, stderr.getvalue()

    def recorded(self):
        with open(self.record, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def test_run_launcher_renders_the_job_file_and_passes_the_exit_code_on(self):
        os.environ["FAKE_EXIT"] = "3"
        status, stderr = self.execute(
            "run_gateway_analytics.py",
            [
                f"--template={TEMPLATE}",
                "--catalog=main",
                "--schema=gw",
                "--output-location=s3://bucket/gw",
                "--payload-table=main.serving.chat_payload",
                "--traces-table=",
                "--gateway-usage-table=main.gw.ai_gateway_usage",
                "--gateway-payload-table=",
                "--run-date=2026-11-02",
                "--from=",
                "--to=",
                "--alerts-jsonl=-",
            ],
        )
        self.assertEqual(status, 3, stderr)
        [call] = self.recorded()
        args = call["args"]
        self.assertEqual(args[0], "run")
        self.assertEqual(args[args.index("--from") + 1], "2026-11-01")
        self.assertEqual(args[args.index("--to") + 1], "2026-11-01")
        self.assertEqual(args[args.index("--alerts-jsonl") + 1], "-")
        config = call["config"]
        self.assertIn('usage = "uc://main.gw.endpoint_usage"', config)
        self.assertIn('payload = "uc://main.serving.chat_payload"', config)
        self.assertIn('location = "s3://bucket/gw"', config)
        self.assertNotIn("traces =", config, "an empty traces table drops its line")
        self.assertIn('gateway_usage = "uc://main.gw.ai_gateway_usage"', config)
        self.assertNotIn("gateway_payload =", config, "an empty Beta payload table drops its line")
        self.assertNotIn("${", "\n".join(l for l in config.splitlines() if not l.lstrip().startswith("#")))

    RUN_ARGS = [f"--template={TEMPLATE}", "--catalog=main", "--schema=gw", "--output-location=s3://b/gw"]

    def with_fake_sdk(self):
        for path, text in FAKE_SDK.items():
            write(os.path.join(self.work.name, "sdk", path), text)
        sys.path.insert(0, os.path.join(self.work.name, "sdk"))
        for name in [n for n in os.environ if n.startswith("DATABRICKS_")]:
            del os.environ[name]
        os.environ["DATABRICKS_RUNTIME_VERSION"] = "15.4"

    def test_on_databricks_without_credentials_the_task_identity_is_used(self):
        self.with_fake_sdk()
        status, stderr = self.execute("run_gateway_analytics.py", self.RUN_ARGS)
        self.assertEqual(status, 0, stderr)
        [call] = self.recorded()
        self.assertEqual(call["auth"]["host"], "https://adb-1.azuredatabricks.net")
        self.assertTrue(call["auth"]["token_is_runtime_token"])
        self.assertNotIn("runtime-token-of-the-task", stderr)

    def test_credentials_the_cluster_sets_win_over_the_task_identity(self):
        self.with_fake_sdk()
        os.environ.update({"DATABRICKS_CLIENT_ID": "sp-app-id", "DATABRICKS_CLIENT_SECRET": "s", "FAKE_SDK_FAILS": "1"})
        status, stderr = self.execute("run_gateway_analytics.py", self.RUN_ARGS)
        self.assertEqual(status, 0, stderr)
        [call] = self.recorded()
        self.assertEqual(call["auth"]["client_id"], "sp-app-id")
        self.assertFalse(call["auth"]["token_is_runtime_token"])

    def test_no_identity_at_all_is_a_clear_error(self):
        self.with_fake_sdk()
        os.environ["FAKE_SDK_FAILS"] = "1"
        status, stderr = self.execute("run_gateway_analytics.py", self.RUN_ARGS)
        self.assertEqual(status, 2)
        self.assertIn("DATABRICKS_CLIENT_ID", stderr)
        self.assertFalse(os.path.exists(self.record), "the binary must not run")

    def test_run_launcher_without_a_template_is_a_usage_error(self):
        status, stderr = self.execute("run_gateway_analytics.py", ["--catalog=main"])
        self.assertEqual(status, 2)
        self.assertIn("--template", stderr)
        self.assertFalse(os.path.exists(self.record), "the binary must not run")

    def test_run_launcher_reports_a_missing_binary(self):
        os.environ["PATH"] = self.elsewhere
        status, stderr = self.execute(
            "run_gateway_analytics.py",
            [f"--template={TEMPLATE}", "--catalog=main", "--schema=gw", "--output-location=s3://b/gw"],
        )
        self.assertEqual(status, 2)
        self.assertIn("add the wheel to the task's libraries", stderr)

    def test_spark_runner_finds_its_modules_beside_the_template(self):
        for path, text in FAKE_PYSPARK.items():
            write(os.path.join(self.work.name, "site", path), text)
        sys.path.insert(0, os.path.join(self.work.name, "site"))
        status, stderr = self.execute(
            "spark_runner.py",
            [f"--template={TEMPLATE}", "--catalog=main", "--schema=gw", "--from=2026-11-01", "--to=2026-11-03"],
        )
        self.assertIn(status, (0, None), stderr)
        [call] = self.recorded()
        self.assertEqual(call["args"][:1], ["spark-sql"])
        self.assertEqual(call["args"][call["args"].index("--from") + 1], "2026-11-01")
        with open(self.spark_log, encoding="utf-8") as f:
            log = [json.loads(line) for line in f]
        [parsed] = [entry[1] for entry in log if entry[0] == "sql" and "VIEW parsed" in entry[1]]
        self.assertIn("from_json(", parsed, "gateway_functions was found and rewrote the call into built-ins")
        self.assertNotIn("gateway_usage(response", parsed)
        self.assertIn(["sql", "CREATE TEMP VIEW usage_source AS SELECT 1"], log)
        self.assertIn(["conf", ["spark.sql.session.timeZone", "UTC"]], log)
        self.assertIn(["saveAsTable", "main.gw.computed_dates"], log)
        self.assertIn(
            ["sql", "CREATE TABLE IF NOT EXISTS main.gw.computed_dates USING DELTA CLUSTER BY (usage_date) "
             "AS SELECT * FROM gateway_analytics_replacing WHERE false"],
            log,
            "the ledger is created with liquid clustering on the date",
        )
        self.assertFalse([e for e in log if e[0] == "write" and e[1][0] == "partitionBy"], "no table is partitioned")

    def test_spark_runner_names_a_template_without_its_modules(self):
        elsewhere_template = os.path.join(self.elsewhere, "databricks-job.toml")
        with open(TEMPLATE, encoding="utf-8") as f:
            write(elsewhere_template, f.read())
        with self.assertRaises(FileNotFoundError) as raised:
            self.execute("spark_runner.py", [f"--template={elsewhere_template}", "--catalog=main", "--schema=gw"])
        self.assertIn("src/gateway_functions.py", str(raised.exception))


if __name__ == "__main__":
    unittest.main()
