"""Compares the check totals of the benchmark's tools; exits 1 when two tools disagree.

    compare_checks.py TOOL=FILE ...

Each FILE holds one JSON object of totals. Every total two tools both report is compared: the
hand-written peers report no cache-read tokens and a cost without token categories
(`cost_picodollars_without_categories`, by design not comparable with the others' cost), the
body-parsing peers no alerts or trace coverage, so each pair is compared on what both compute.
Prints one Markdown line per tool saying what it was checked on.
"""
import json
import sys

tools = [arg.split("=", 1) for arg in sys.argv[1:]]
totals = {tool: json.load(open(path)) for tool, path in tools}
failed = False
lines = []
for i, (tool, _) in enumerate(tools):
    agreed, compared_with = set(), []
    for other, _ in tools[:i] + tools[i + 1:]:
        common = sorted(set(totals[tool]) & set(totals[other]))
        for key in common:
            if totals[tool][key] != totals[other][key]:
                failed = True
                print(f"{tool} and {other} differ in {key}: {totals[tool][key]} against {totals[other][key]}",
                      file=sys.stderr)
        agreed.update(common)
        compared_with.append(other)
    unchecked = sorted(set(totals[tool]) - agreed)
    line = f"- {tool}: " + ", ".join(f"{key} {totals[tool][key]}" for key in sorted(agreed))
    if unchecked:
        line += "; not compared (no other tool computes them): " + ", ".join(
            f"{key} {totals[tool][key]}" for key in unchecked)
    lines.append(line)
print("\n".join(lines))
sys.exit(1 if failed else 0)
