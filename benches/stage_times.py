"""The stage table of a `gateway-analytics -v run` log: each stage's seconds (from its start line
to the next stage's), as Markdown.

    gateway-analytics -v run ... 2> run.log; python3 benches/stage_times.py run.log
"""
import datetime
import re
import sys

ansi = re.compile(r"\x1b\[[0-9;]*m")
line_format = re.compile(r"^(\S+Z)\s+INFO\s+(.*)$")
stage_starts = ("checking inputs", "planning", "materialising ", "computing ", "writing ", "committing ")
stages = []
last = None
for raw in open(sys.argv[1], encoding="utf-8", errors="replace"):
    match = line_format.match(ansi.sub("", raw).strip())
    if not match:
        continue
    at = datetime.datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
    last = at
    message = match.group(2)
    if message.startswith(stage_starts):
        stages.append((re.sub(r" for \d{4}-\d{2}-\d{2}\.\.\d{4}-\d{2}-\d{2}$", "", message), at))
print("| stage | s |")
print("|---|---:|")
for (name, at), (_, following) in zip(stages, stages[1:] + [("end", last)]):
    print(f"| {name} | {(following - at).total_seconds():.1f} |")
print(f"| total (first stage to last log line) | {(last - stages[0][1]).total_seconds():.1f} |")
