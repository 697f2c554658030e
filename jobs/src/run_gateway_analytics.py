"""Runs `gateway-analytics run` in a Databricks job task and exits with its exit code.

The binary ships as a wheel (`bindings = "bin"`, see pyproject.toml) installed as the task's
library; a wheel like that has no Python entry point, so the job starts it through this script
(a spark_python_task). The script fills in the job file template (jobs/databricks-job.toml) from
the task's parameters, resolves the window and runs the binary:

    run_gateway_analytics.py --template databricks-job.toml --catalog main --schema gateway \
        --output-location s3://bucket/gateway --run-date 2026-11-02 [--from D] [--to D] \
        [--payload-table c.s.chat_payload] [--traces-table c.s.trace_logs_1] \
        [--gateway-usage-table c.s.ai_gateway_usage] [--gateway-payload-table c.s.chat_payload] \
        [--alerts-jsonl PATH|-] [--io direct|staged [--late-days N] [--recommendations-dir DIR]]
        [-- more gateway-analytics run options, e.g. --fail-on critical]

With --io staged (the bundle's nightly) the run reads and writes only through this cluster's
Spark session: staged_io.py (beside this file in the bundle's src/) copies what the run reads
to the driver's disk and writes the outputs back as managed tables of --catalog.--schema, and
--output-location is not used.

Empty --from/--to mean the UTC day before --run-date (the job passes the run's start date);
one alone is a one-day window. Exit codes are the binary's: 0 ok, 1 runtime failure, 2 bad
configuration or input, 3 an alert at or over --fail-on fired, 5 the run passed its deadline.
"""

import argparse
import datetime
import os
import shutil
import string
import subprocess
import sys
import sysconfig
import tempfile

DESCRIPTION = "Runs `gateway-analytics run` in a Databricks job task and exits with its exit code."
REQUIRED = ("catalog", "schema", "output_location")
OPTIONAL = ("payload_table", "traces_table", "gateway_usage_table", "gateway_payload_table")


def render(template_text, values):
    """Fills `${name}` placeholders outside comments; drops a line whose placeholders are all
    empty optional values (no payload, traces or Beta table)."""
    for name in REQUIRED:
        if not values.get(name):
            raise ValueError(f"--{name.replace('_', '-')} is required")
    lines = []
    for line in template_text.splitlines(keepends=True):
        if line.lstrip().startswith("#"):
            lines.append(line)
            continue
        matches = string.Template.pattern.finditer(line)
        names = {m.group("braced") or m.group("named") for m in matches} - {None}
        if names and all(name in OPTIONAL and not values.get(name) for name in names):
            continue
        lines.append(string.Template(line).substitute(values))
    return "".join(lines)


def window(run_date, date_from, date_to):
    """The --from/--to dates: the day before run_date unless given; one bound alone is one day."""
    if not date_from and not date_to:
        today = datetime.datetime.now(datetime.timezone.utc).date()
        day = datetime.date.fromisoformat(run_date) if run_date else today
        date_from = date_to = (day - datetime.timedelta(days=1)).isoformat()
    return date_from or date_to, date_to or date_from


def find_binary():
    """The executable pip installed with the wheel: the scripts folder of this interpreter, then PATH."""
    candidates = [os.path.join(sysconfig.get_path("scripts"), "gateway-analytics"),
                  os.path.join(os.path.dirname(sys.executable), "gateway-analytics")]
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("gateway-analytics")
    if not found:
        raise FileNotFoundError("gateway-analytics is not installed: add the wheel to the task's libraries")
    return found


def workspace_path(path):
    """Bundle paths may lack the /Workspace prefix under which the cluster mounts workspace files."""
    mounted = "/Workspace" + path
    if not os.path.exists(path) and path.startswith("/") and os.path.exists(mounted):
        return mounted
    return path


CREDENTIAL_VARIABLES = ("DATABRICKS_CLIENT_ID", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE")


def databricks_identity(env):
    """The environment the binary's `uc://` reads authenticate with. When the cluster gives no
    credential (no DATABRICKS_CLIENT_ID / DATABRICKS_CLIENT_SECRET, DATABRICKS_TOKEN or profile)
    and this runs on Databricks, the task's own identity: the host and a token of the principal
    the job runs as, from the Databricks SDK's runtime authentication (the SDK ships with
    Databricks Runtime). The token is passed to the binary in its environment, never printed."""
    if any(env.get(name) for name in CREDENTIAL_VARIABLES) or not env.get("DATABRICKS_RUNTIME_VERSION"):
        return env
    try:
        from databricks.sdk.core import Config

        config = Config()
        header = config.authenticate().get("Authorization", "")
        host = config.host
    except Exception as e:  # the SDK's own errors name what is missing; they carry no token
        raise RuntimeError(
            f"no credential for uc:// reads: the cluster sets none and the Databricks SDK gave none ({type(e).__name__}); "
            "set DATABRICKS_CLIENT_ID / DATABRICKS_CLIENT_SECRET from a secret scope (docs/DATABRICKS.md)"
        ) from None
    if not header.startswith("Bearer ") or not host:
        raise RuntimeError("the Databricks SDK gave no bearer token for this task's identity")
    return {**env, "DATABRICKS_HOST": env.get("DATABRICKS_HOST") or host, "DATABRICKS_TOKEN": header[len("Bearer "):]}


def main(argv=None):
    # No default template: Databricks does not define __file__ for every way it runs a Python
    # file (exec, IPython), so nothing here may be found relative to this script.
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--template", required=True, help="the job file template (TOML)")
    parser.add_argument("--catalog", default="")
    parser.add_argument("--schema", default="")
    parser.add_argument("--output-location", default="")
    parser.add_argument("--payload-table", default="")
    parser.add_argument("--traces-table", default="")
    parser.add_argument("--gateway-usage-table", default="", help="the copy of system.ai_gateway.usage")
    parser.add_argument("--gateway-payload-table", default="", help="a new AI Gateway payload table")
    parser.add_argument("--run-date", default="", help="UTC date the window is the day before of")
    parser.add_argument("--from", dest="date_from", default="")
    parser.add_argument("--to", dest="date_to", default="")
    parser.add_argument("--alerts-jsonl", default="", help="file for the alerts as JSON Lines, - for stdout")
    parser.add_argument("--io", choices=("direct", "staged"), default="direct",
                        help="staged: read and write through this cluster's Spark session (jobs/src/staged_io.py)")
    parser.add_argument("--late-days", type=int, default=0,
                        help="with --io staged, dates before the window computed again for late rows")
    parser.add_argument("--work-dir", default="", help="with --io staged, the local folder of the staged copies")
    parser.add_argument("--recommendations-dir", default="",
                        help="with --io staged, where to keep the run's recommendations/ files (e.g. a /Volumes path); "
                        "the new AI Gateway's go in its ai_gateway/ folder")
    parser.add_argument("extra", nargs="*", help="more `gateway-analytics run` options, after --")
    args = parser.parse_args(argv)

    try:
        values = vars(args)
        if args.io == "staged":  # outputs go to Unity Catalog tables through Spark, not to a location
            values = {**values, "output_location": "staged"}
        with open(workspace_path(args.template), encoding="utf-8") as f:
            job_file = render(f.read(), values)
        date_from, date_to = window(args.run_date, args.date_from, args.date_to)
        binary = find_binary()
    except KeyError as e:
        print(f"run_gateway_analytics: the template has an unknown placeholder ${{{e.args[0]}}}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"run_gateway_analytics: {e}", file=sys.stderr)
        return 2

    if args.io == "staged":
        return run_staged(args, job_file, binary, date_from, date_to)

    with tempfile.TemporaryDirectory() as work:
        config = os.path.join(work, "job.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(job_file)
        # Wait up to half an hour for another run on the same output location (a backfill).
        command = [binary, "run", "--config", config, "--from", date_from, "--to", date_to, "-v", "--wait", "1800"]
        if args.alerts_jsonl:
            command += ["--alerts-jsonl", args.alerts_jsonl]
        command += args.extra
        print("run_gateway_analytics: " + " ".join(command), file=sys.stderr, flush=True)
        try:
            env = databricks_identity({"NO_COLOR": "1", **os.environ})  # task logs are not terminals
        except RuntimeError as e:
            print(f"run_gateway_analytics: {e}", file=sys.stderr)
            return 2
        code = subprocess.run(command, check=False, env=env).returncode
        return code if code >= 0 else 1  # killed by a signal: a runtime failure


def run_staged(args, job_file, binary, date_from, date_to):
    """`--io staged`: the run through this cluster's Spark session (staged_io.run_staged), on the
    driver's local disk (/local_disk0 on Databricks)."""
    folder = os.path.join(os.path.dirname(os.path.abspath(workspace_path(args.template))), "src")
    if not os.path.isfile(os.path.join(folder, "staged_io.py")):
        print(f"run_gateway_analytics: no src/staged_io.py beside {args.template}", file=sys.stderr)
        return 2
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import staged_io
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    root = args.work_dir or ("/local_disk0/tmp" if os.path.isdir("/local_disk0") else None)
    run_args = ["--from", date_from, "--to", date_to, "-v", "--wait", "1800"]
    if args.alerts_jsonl:
        run_args += ["--alerts-jsonl", args.alerts_jsonl]
    run_args += args.extra
    env = {"NO_COLOR": "1", **os.environ}
    with tempfile.TemporaryDirectory(dir=root) as work:
        try:
            code = staged_io.run_staged(
                spark, job_file, args.catalog, args.schema, run_args, binary, work, env, args.late_days
            )
        except (ValueError, RuntimeError) as e:  # a job file or cluster staged IO cannot use
            print(f"run_gateway_analytics: {e}", file=sys.stderr)
            return 2
        if args.recommendations_dir:
            keep_recommendations(os.path.join(work, "outputs"), args.recommendations_dir)
        return code


def keep_recommendations(outputs, target_dir):
    """Copies the run's patch files to `target_dir`: the serving endpoints' (`recommendations/`)
    into it, the new AI Gateway's (`ai_gateway_recommendations/`) into its `ai_gateway/`. The
    newest as-of date's files replace latest/ whole; dated folders are replaced."""
    folders = (("recommendations", target_dir), ("ai_gateway_recommendations", os.path.join(target_dir, "ai_gateway")))
    for folder, target in folders:
        files = os.path.join(outputs, folder)
        if not os.path.isdir(files):
            continue
        for name in sorted(os.listdir(files)):
            shutil.rmtree(os.path.join(target, name), ignore_errors=True)
            shutil.copytree(os.path.join(files, name), os.path.join(target, name))


if __name__ == "__main__":
    sys.exit(main())
