"""Offline checks of the Databricks Asset Bundle in jobs/ (run by scripts/check-bundle.sh).

1. databricks.yml merged with its `include`d files validates against the Databricks CLI's
   JSON schema (check-jsonschema), which catches misspelled fields and wrong types;
2. what the schema cannot see: every file a task names exists inside the bundle folder (the
   part that is deployed); every `{{job.parameters.X}}`, and every named parameter marker `:X`
   in a job's SQL files, is a parameter of that job; every `${var.X}` is a declared variable;
   `depends_on` names tasks of the same job;
3. the dashboards (`resources.dashboards`): the `.lvdash.json` file exists inside the bundle
   and parses; its datasets have unique names and SQL, read only output tables the jobs register
   (`sql/register_outputs.sql`) and declare every parameter they use (`:window.min`); every
   widget queries a dataset that exists, encodes only fields its queries select, and has a
   spec version the dashboard editor renders; a filter's parameter queries name datasets that
   declare the parameter; the resource points the datasets at the jobs' catalog and schema.
   (That the dataset queries run, and name only existing columns, is tested by running them
   on the demo outputs: tests/integration/report.rs.)
4. a self-check: deliberately broken copies must fail each of those checks.

Generated files (sql/warehouse/, written by `gateway-analytics warehouse-sql`) may be missing:
they are reported, not failed on.
"""

import argparse
import copy
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

GENERATED = ("sql/warehouse/",)
PATH_KEYS = ("path", "python_file", "notebook_path", "file_path")
JOB_PARAMETER = re.compile(r"\{\{\s*job\.parameters\.`?([A-Za-z0-9_.\-]+)`?\s*\}\}")
INTERPOLATION = re.compile(r"\$\{([A-Za-z0-9_.\-\[\]]+)\}")
NAMESPACES = ("var", "bundle", "workspace", "resources", "artifacts")


def load_bundle(root):
    """[(file, document)] for databricks.yml and each included file."""
    main = os.path.join(root, "databricks.yml")
    with open(main, encoding="utf-8") as f:
        docs = [(main, yaml.safe_load(f))]
    for pattern in docs[0][1].get("include", []):
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            with open(path, encoding="utf-8") as f:
                docs.append((path, yaml.safe_load(f) or {}))
    return docs


def merge(into, other, where):
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value, f"{where}.{key}")
        elif key in into and key != "include":
            raise SystemExit(f"check-bundle: {where}.{key} is defined twice")
        else:
            into[key] = value
    return into


def merged(docs):
    result = {}
    for path, doc in docs:
        merge(result, copy.deepcopy(doc), os.path.basename(path))
    return result


def strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def local_paths(node):
    """(key, value) of every task file reference (`path`, `python_file`, `notebook_path`)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PATH_KEYS and isinstance(value, str):
                yield key, value
            else:
                yield from local_paths(value)
    elif isinstance(node, list):
        for value in node:
            yield from local_paths(value)


def sql_markers(text):
    """Named parameter markers (:name) outside comments, string literals and quoted names."""
    text = re.sub(r"--[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`", " ", text, flags=re.S)
    return set(re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", text))


def check(docs, root):
    """Errors (and notes) for what the schema cannot check."""
    errors, notes = [], []
    bundle = merged(docs)
    variables = set((bundle.get("variables") or {}).keys())
    for path, doc in docs:
        name = os.path.relpath(path, root)
        for value in strings(doc):
            for ref in INTERPOLATION.findall(value):
                head = ref.split(".")[0]
                if head not in NAMESPACES:
                    errors.append(f"{name}: ${{{ref}}} is not a bundle reference")
                elif head == "var" and ref.split(".")[1].split("[")[0] not in variables:
                    errors.append(f"{name}: ${{{ref}}} is not a declared variable")
        for key, value in local_paths(doc):
            if "${" in value or "://" in value or value.startswith("/"):
                continue
            target = os.path.normpath(os.path.join(os.path.dirname(path), value))
            relative = os.path.relpath(target, root)
            if relative.startswith(".."):
                errors.append(f"{name}: {key} {value} is outside the bundle folder, so it is not deployed")
            elif not os.path.isfile(target):
                if relative.startswith(GENERATED):
                    notes.append(f"{relative} (generated by `gateway-analytics warehouse-sql`) is not there yet")
                else:
                    errors.append(f"{name}: {key} {value} does not exist ({relative})")
    for target_name, target in (bundle.get("targets") or {}).items():
        for var in (target or {}).get("variables") or {}:
            if var not in variables:
                errors.append(f"targets.{target_name}.variables.{var} is not a declared variable")

    for path, doc in docs:
        for job_key, job in ((doc.get("resources") or {}).get("jobs") or {}).items():
            where = f"{os.path.relpath(path, root)}: job {job_key}"
            declared = {p.get("name") for p in job.get("parameters") or []}
            for value in strings(job):
                for parameter in JOB_PARAMETER.findall(value):
                    if parameter not in declared:
                        errors.append(f"{where}: {{{{job.parameters.{parameter}}}}} is not a job parameter")
            tasks = job.get("tasks") or []
            keys = [task.get("task_key") for task in tasks]
            for duplicate in {k for k in keys if keys.count(k) > 1}:
                errors.append(f"{where}: task_key {duplicate} is used twice")
            for task in tasks:
                for dependency in task.get("depends_on") or []:
                    if dependency.get("task_key") not in keys:
                        errors.append(f"{where}: task {task.get('task_key')} depends on unknown {dependency.get('task_key')}")
                sql = (task.get("sql_task") or {})
                sql_file = (sql.get("file") or {}).get("path")
                if not sql_file:
                    continue
                file = os.path.normpath(os.path.join(os.path.dirname(path), sql_file))
                if not os.path.isfile(file):
                    continue
                bound = declared | set((sql.get("parameters") or {}).keys())
                with open(file, encoding="utf-8") as f:
                    for marker in sorted(sql_markers(f.read()) - bound):
                        errors.append(f"{where}: {os.path.relpath(file, root)} uses :{marker}, which no parameter binds")
    errors.extend(dashboard_checks(docs, root))
    return errors, notes


# The spec version each widget type renders with (a wrong version draws an empty tile).
WIDGET_VERSIONS = {
    "counter": 2, "table": 1, "bar": 3, "line": 3, "area": 3, "pie": 3, "scatter": 3, "heatmap": 3,
    "filter-single-select": 2, "filter-multi-select": 2, "filter-date-range-picker": 2, "filter-date-picker": 2,
}
SQL_KEYWORDS = {"select", "lateral", "unnest", "values", "("}


def registered_outputs(root):
    """The output tables the jobs register (jobs/sql/register_outputs.sql)."""
    with open(os.path.join(root, "sql", "register_outputs.sql"), encoding="utf-8") as f:
        return set(re.findall(r"'\{table\}', '([a-z_]+)'", f.read()))


def dataset_sql(dataset):
    if "queryLines" in dataset:
        return "".join(dataset["queryLines"])
    return dataset.get("query", "")


def read_tables(sql):
    """Tables named after FROM or JOIN, without the query's own CTE names."""
    text = re.sub(r"--[^\n]*|'(?:[^']|'')*'", " ", sql)
    ctes = set(re.findall(r"(?:\bWITH|,)\s*([A-Za-z_]\w*)\s+AS\s*\(", text, flags=re.I))
    named = re.findall(r"\b(?:FROM|JOIN)\s+([`\w.]+|\()", text, flags=re.I)
    return {n.strip("`").split(".")[-1] for n in named if n.lower() not in SQL_KEYWORDS} - ctes


def dashboard_errors(dashboard, where, outputs):
    """Errors in a parsed .lvdash.json."""
    errors = []
    datasets = {}
    for dataset in dashboard.get("datasets") or []:
        name = dataset.get("name")
        if name in datasets:
            errors.append(f"{where}: dataset {name} is defined twice")
        datasets[name] = dataset
        sql = dataset_sql(dataset)
        if not sql.strip():
            errors.append(f"{where}: dataset {name} has no query")
        for table in sorted(read_tables(sql) - outputs):
            errors.append(f"{where}: dataset {name} reads {table}, which is not an output table the jobs register")
        declared = {p.get("keyword") for p in dataset.get("parameters") or []}
        for marker in sorted(sql_markers(sql) - declared):
            errors.append(f"{where}: dataset {name} uses :{marker}, which it does not declare as a parameter")
    if not datasets:
        errors.append(f"{where}: no datasets")
    pages = dashboard.get("pages") or []
    if not pages:
        errors.append(f"{where}: no pages")
    for page in pages:
        for item in page.get("layout") or []:
            widget = item.get("widget") or {}
            label = f"{where}: widget {widget.get('name')}"
            position = item.get("position") or {}
            if not all(isinstance(position.get(k), int) for k in ("x", "y", "width", "height")) \
                    or position.get("x", 0) + position.get("width", 0) > 6:
                errors.append(f"{label} has no valid position on the 6-column grid")
            spec = widget.get("spec")
            if spec is None:
                if "multilineTextboxSpec" not in widget and "textbox_spec" not in widget:
                    errors.append(f"{label} has neither a spec nor text")
                continue
            kind = spec.get("widgetType")
            if WIDGET_VERSIONS.get(kind) != spec.get("version"):
                errors.append(f"{label}: {kind} version {spec.get('version')} (the editor renders "
                              f"version {WIDGET_VERSIONS.get(kind, '?')})")
            selected = set()
            queries = {}
            for q in widget.get("queries") or []:
                query = q.get("query") or {}
                queries[q.get("name")] = query
                dataset = datasets.get(query.get("datasetName"))
                if dataset is None:
                    errors.append(f"{label} queries unknown dataset {query.get('datasetName')}")
                    continue
                selected |= {f.get("name") for f in query.get("fields") or []}
                declared = {p.get("keyword") for p in dataset.get("parameters") or []}
                for parameter in query.get("parameters") or []:
                    if parameter.get("keyword") not in declared:
                        errors.append(f"{label} binds parameter {parameter.get('keyword')} of dataset "
                                      f"{dataset.get('name')}, which does not declare it")
            encodings = spec.get("encodings") or {}
            named = []
            for key, value in encodings.items():
                for encoding in value if isinstance(value, list) else [value]:
                    if isinstance(encoding, dict) and "fieldName" in encoding:
                        named.append(encoding["fieldName"])
                        if encoding.get("queryName") and encoding["queryName"] not in queries:
                            errors.append(f"{label}: encoding names unknown query {encoding['queryName']}")
                    if isinstance(encoding, dict) and "parameterName" in encoding \
                            and encoding.get("queryName") not in queries:
                        errors.append(f"{label}: parameter encoding names unknown query {encoding.get('queryName')}")
            for name in named:
                if name not in selected:
                    errors.append(f"{label} encodes {name}, which none of its queries selects")
    return errors


def dashboard_checks(docs, root):
    """Errors of every dashboard resource of the bundle."""
    errors = []
    outputs = registered_outputs(root)
    for path, doc in docs:
        for key, resource in ((doc.get("resources") or {}).get("dashboards") or {}).items():
            where = f"{os.path.relpath(path, root)}: dashboard {key}"
            for setting in ("dataset_catalog", "dataset_schema", "warehouse_id"):
                if not resource.get(setting):
                    errors.append(f"{where}: {setting} is not set (the datasets name tables without catalog and schema)"
                                  if setting != "warehouse_id" else f"{where}: warehouse_id is not set")
            file_path = resource.get("file_path")
            if not file_path:
                errors.append(f"{where}: no file_path")
                continue
            file = os.path.normpath(os.path.join(os.path.dirname(path), file_path))
            if not file_path.endswith(".lvdash.json"):
                errors.append(f"{where}: file_path {file_path} is not a .lvdash.json file")
            if not os.path.isfile(file):
                continue  # reported with the other missing files
            try:
                with open(file, encoding="utf-8") as f:
                    dashboard = json.load(f)
            except ValueError as e:
                errors.append(f"{where}: {os.path.relpath(file, root)} is not JSON: {e}")
                continue
            errors.extend(dashboard_errors(dashboard, f"{os.path.relpath(file, root)}", outputs))
    return errors


def schema_errors(bundle, schema, checker):
    """The schema's complaints about `bundle` (the deepest match of each), or None if it is valid."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(bundle, f)
    try:
        result = subprocess.run([checker, "--output-format", "JSON", "--schemafile", schema, f.name],
                                capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if result.returncode == 0:
        return None
    try:
        report = json.loads(result.stdout)
    except ValueError:
        return (result.stdout + result.stderr).strip()
    lines = []
    for error in report.get("errors", []) + report.get("parse_errors", []):
        best = error.get("best_deep_match") or error
        lines.append(f"  {best.get('path', '')}: {str(best.get('message', error))[:300]}")
    return "\n".join(lines) or result.stdout.strip()


def first_job(docs):
    for _, doc in docs:
        for job in ((doc.get("resources") or {}).get("jobs") or {}).values():
            if job.get("schedule") and job.get("parameters"):
                return job
    raise SystemExit("check-bundle: no scheduled job with parameters to break for the self-check")


def self_check(docs, root, schema, checker):
    """Each broken copy must be caught; returns the checks that missed theirs."""
    missed = []
    broken = copy.deepcopy(docs)
    schedule = first_job(broken)["schedule"]
    schedule["quartz_cron_expresion"] = schedule.pop("quartz_cron_expression")
    if schema_errors(merged(broken), schema, checker) is None:
        missed.append("schema: a misspelled field (quartz_cron_expresion) validated")

    cases = {  # what is broken: (how, the error it must cause)
        "an undeclared {{job.parameters.X}}": (lambda job: job["tasks"].append(
            {"task_key": "x", "condition_task": {"left": "{{job.parameters.nope}}", "op": "EQUAL_TO", "right": "1"}}),
            "{{job.parameters.nope}} is not a job parameter"),
        "an undeclared ${var.X}": (lambda job: job.update({"description": "${var.nope}"}),
                                   "${var.nope} is not a declared variable"),
        "a missing file": (lambda job: job["tasks"].append(
            {"task_key": "x", "spark_python_task": {"python_file": "../src/nope.py"}}), "does not exist"),
        "an unknown depends_on": (lambda job: job["tasks"][0].update({"depends_on": [{"task_key": "nope"}]}),
                                  "depends on unknown nope"),
        "an unbound SQL marker": (lambda job: job["parameters"].pop(0), "which no parameter binds"),
    }
    for what, (breaks, expected) in cases.items():
        broken = copy.deepcopy(docs)
        breaks(first_job(broken))
        if not any(expected in error for error in check(broken, root)[0]):
            missed.append(f"custom: {what} was not caught")

    dashboard = first_dashboard(docs, root)
    outputs = registered_outputs(root)
    dashboard_cases = {
        "a dataset reading a table that is not an output": (
            lambda d: d["datasets"][0].update({"queryLines": ["SELECT * FROM dialy_spend"]}),
            "reads dialy_spend, which is not an output table"),
        "a widget querying an unknown dataset": (
            lambda d: next(w for w in widgets(d) if w.get("queries"))["queries"][0]["query"].update(
                {"datasetName": "nope"}), "queries unknown dataset nope"),
        "an encoding of a field no query selects": (
            lambda d: next(w for w in widgets(d) if (w.get("spec") or {}).get("widgetType") == "bar")
            ["spec"]["encodings"]["y"].update({"fieldName": "sum(nope)"}), "encodes sum(nope)"),
        "an undeclared dataset parameter": (
            lambda d: next(ds for ds in d["datasets"] if ds.get("parameters")).pop("parameters"),
            "which it does not declare as a parameter"),
        "a wrong widget version": (
            lambda d: next(w for w in widgets(d) if (w.get("spec") or {}).get("widgetType") == "counter")
            ["spec"].update({"version": 3}), "counter version 3"),
    }
    for what, (breaks, expected) in dashboard_cases.items():
        broken = copy.deepcopy(dashboard)
        breaks(broken)
        if not any(expected in error for error in dashboard_errors(broken, "self-check", outputs)):
            missed.append(f"dashboard: {what} was not caught")
    broken = copy.deepcopy(docs)
    for _, doc in broken:
        for resource in ((doc.get("resources") or {}).get("dashboards") or {}).values():
            resource["file_path"] = "../dashboards/nope.lvdash.json"
    if not any("does not exist" in error for error in check(broken, root)[0]):
        missed.append("dashboard: a missing .lvdash.json was not caught")
    return missed


def widgets(dashboard):
    for page in dashboard.get("pages") or []:
        for item in page.get("layout") or []:
            yield item.get("widget") or {}


def first_dashboard(docs, root):
    for path, doc in docs:
        for resource in ((doc.get("resources") or {}).get("dashboards") or {}).values():
            with open(os.path.normpath(os.path.join(os.path.dirname(path), resource["file_path"])), encoding="utf-8") as f:
                return json.load(f)
    raise SystemExit("check-bundle: no dashboard to break for the self-check")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True, help="the folder with databricks.yml")
    parser.add_argument("--schema", required=True, help="the bundle JSON schema")
    parser.add_argument("--check-jsonschema", required=True, help="the check-jsonschema command")
    args = parser.parse_args()
    root = os.path.abspath(args.bundle)
    docs = load_bundle(root)
    print(f"check-bundle: {', '.join(os.path.relpath(p, root) for p, _ in docs)}")

    failed = False
    output = schema_errors(merged(docs), args.schema, args.check_jsonschema)
    if output is not None:
        print(f"check-bundle: the bundle does not match the schema:\n{output}", file=sys.stderr)
        failed = True
    errors, notes = check(docs, root)
    for note in notes:
        print(f"check-bundle: note: {note}")
    for error in errors:
        print(f"check-bundle: {error}", file=sys.stderr)
    missed = self_check(docs, root, args.schema, args.check_jsonschema)
    for miss in missed:
        print(f"check-bundle: self-check failed: {miss}", file=sys.stderr)
    if failed or errors or missed:
        return 1
    print("check-bundle: schema valid; files, job parameters, SQL markers, variables and the dashboard's "
          "datasets, widgets and parameters resolve; broken copies are rejected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
