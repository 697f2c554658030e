#!/usr/bin/env bash
# The benchmark: gateway-analytics against the same nightly computation in DuckDB and Polars.
#
#   benches/run.sh [--sizes 1000000,10000000] [--days 1] [--traces] [--runs 3] [--request-bytes 3000]
#                  [--memory-mib 2048]
#                  [--tools ours,ours-same,ours-four,duckdb,polars,duckdb-by-hand,polars-by-hand,datafusion-by-hand]
#
# For each size N it generates a data set of --days UTC days (N usage rows a day, the matching
# payload rows with ~request-bytes of request JSON; with --traces also the MLflow trace_logs
# table) with `gateway-analytics generate --lean [--traces]`, then runs each tool --runs times
# under /usr/bin/time -v over those days:
# - ours: `gateway-analytics run` (release build, Delta tables), every output;
# - ours-same: `run --only` the outputs the hand-written peers compute: daily_spend,
#   hourly_errors, rate_limit_recommendations, alerts (which reads data_quality) and, with
#   --traces, trace_coverage;
# - ours-four: the same without alerts (so without data_quality);
# - duckdb, polars: benches/peers/{duckdb,polars}_nightly.py, daily_spend with token categories
#   parsed from every response body, hourly_errors and the per-minute demand statistics;
# - duckdb-by-hand, polars-by-hand: benches/peers/{duckdb,polars}_by_hand.py, the same plus the
#   429 alerts and trace coverage written the way a user would by hand: token counts from the
#   usage table (no cache or reasoning categories, so a different cost), latency from the
#   payload's small columns, no response body read;
# - datafusion-by-hand: benches/peers/datafusion_by_hand.{py,sql}, duckdb-by-hand's SQL in
#   DataFusion's dialect, run by `gateway-analytics query` in the job's own session: what our
#   engine takes for the hand-written work.
# The peers are installed from PyPI into their own virtualenv. benches/peers/compare_checks.py
# checks that every two tools agree on every total both compute, and the script prints a
# Markdown table of median wall time and peak memory (max RSS) with the 1-minute load average
# at each run's start, also saved under $BENCH_DATA/results-<N>-<days>d[-traces].md. A tool run
# that fails or crashes is reported in the table (how it ended, after how long) and left out of
# the medians and the comparison; the other tools still run. Before the first tool the data set
# is read once, so that no tool pays for reading it cold.
#
# Data sets live in $BENCH_DATA (default ~/.cache/gateway-analytics/bench-data) and are reused
# while their manifest matches. The release build takes ~40 minutes cold on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=1000000,10000000
runs=3
request_bytes=3000
memory_mib=2048
days=1
traces=false
tools=ours,ours-same,ours-four,duckdb,polars,duckdb-by-hand,polars-by-hand,datafusion-by-hand
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --traces) traces=true; shift ;;
    --runs) runs=$2; shift 2 ;;
    --request-bytes) request_bytes=$2; shift 2 ;;
    --memory-mib) memory_mib=$2; shift 2 ;;
    --tools) tools=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

cache=$HOME/.cache/gateway-analytics
data_root=${BENCH_DATA:-$cache/bench-data}
first=2026-11-01
last=$(date -u -d "$first + $((days - 1)) days" +%F)
mkdir -p "$data_root"

source scripts/python-venv.sh
python_venv bench duckdb==2.0.1 polars==2.1.0 deltalake==1.1.4 pyarrow==21.0.0
py=$venv/bin/python
# DuckDB's delta extension, once per harness run (the DuckDB peers read with delta_scan when it
# is installed, else the Parquet files deltalake lists; the same rows without deletion vectors).
timeout 60 "$py" -c "import duckdb; duckdb.connect().execute('INSTALL delta')" 2> /dev/null \
  || echo "DuckDB's delta extension could not be installed: the DuckDB peers read the tables' Parquet files" >&2

# GATEWAY_ANALYTICS_BIN runs another build (a published wheel's binary, say) instead.
binary=${GATEWAY_ANALYTICS_BIN:-}
if [ -z "$binary" ]; then
  cargo build --release --quiet --bin gateway-analytics
  binary=${CARGO_TARGET_DIR:-target}/release/gateway-analytics
fi

# Runs a command under /usr/bin/time; prints "<wall seconds> <max RSS MiB>" and keeps its stdout
# in $2 and its stderr in $3. A command that fails (a crash included) prints the same, its last
# stderr lines and how it ended go to the terminal, and the status is 1: the caller records the
# failed run and goes on with the other tools.
measure() {
  local log=$1 stdout=$2 stderr=$3 status=0; shift 3
  /usr/bin/time -v -o "$log" "$@" > "$stdout" 2> "$stderr" || status=1
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log")
  if [ $status != 0 ]; then
    tail -n 20 "$stderr" >&2
    echo "failed after $wall s ($(grep -m1 -E 'Command (terminated by signal|exited with non-zero status)' "$log" || echo 'see above')): $*" >&2
  fi
  echo "$wall $rss"
  return $status
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

IFS=, read -ra size_list <<< "$sizes"
for n in "${size_list[@]}"; do
  name=n$n-${days}d; generate_traces=()
  if $traces; then name+=-traces; generate_traces=(--traces); fi
  data=$data_root/$name
  if ! grep -q "\"requests_per_day\": $n," "$data/manifest.json" 2>/dev/null \
     || ! grep -q "\"request_bytes\": $request_bytes," "$data/manifest.json" \
     || ! grep -q "\"days\": $days," "$data/manifest.json" \
     || [ "$(grep -c '"traces": true' "$data/manifest.json")" != "$($traces && echo 1 || echo 0)" ]; then
    echo "generating $days days of $n requests ($request_bytes-byte requests, traces: $traces) in $data" >&2
    rm -rf "$data"
    "$binary" generate --out "$data" --days "$days" --start $first --requests-per-day "$n" \
      --request-bytes "$request_bytes" --lean "${generate_traces[@]}"
  fi
  payload_rows=$(sed -n 's/.*"payload_rows": \([0-9]*\).*/\1/p' "$data/manifest.json")
  bytes=$(du -sb "$data/gateway_payload" | cut -f1)
  work=$data_root/work-$name
  traces_input=""; same=daily_spend,hourly_errors,rate_limit_recommendations
  if $traces; then traces_input="traces = \"$data/trace_logs\""; same+=,trace_coverage; fi
  cat > "$data_root/job-$name.toml" <<TOML
[inputs]
usage = "$data/endpoint_usage"
served_entities = "$data/served_entities"
payload = "$data/gateway_payload"
prices = "$data/prices.csv"
teams = "$data/teams.csv"
rate_limits = "$data/rate_limits.json"
$traces_input

[output]
location = "$work/ours"

[engine]
memory_limit_mib = $memory_mib
TOML
  declare -A walls=() rsss=() loads=() failures=(); scanned=""
  IFS=, read -ra tool_list <<< "$tools"
  ours_run=("$binary" -v run --config "$data_root/job-$name.toml" --from $first --to $last --format json)
  # Every tool starts with the data set in the page cache as far as memory allows: without this
  # the first tool read cold files (at 10M the full run took 103.2 s as the harness's first
  # tool, 96.8 s after the data set had been read once).
  echo "reading $(du -sh "$data" | cut -f1) of $data once into the page cache" >&2
  find "$data" -type f -exec cat {} + > /dev/null
  for tool in "${tool_list[@]}"; do
    for ((i = 1; i <= runs; i++)); do
      rm -rf "$work"; mkdir -p "$work/peer"
      sync; load=$(cut -d' ' -f1 /proc/loadavg)
      echo "  $tool run $i of $runs on $n rows a day, $days days (load $load)" >&2
      case $tool in
        ours|ours-same|ours-four)
                only=(); [ $tool = ours-same ] && only=(--only "$same,alerts"); [ $tool = ours-four ] && only=(--only "$same")
                command=("${ours_run[@]}" "${only[@]}") ;;
        duckdb|polars|duckdb-by-hand|polars-by-hand)
                script=benches/peers/${tool%%-*}_$([[ $tool == *-by-hand ]] && echo by_hand || echo nightly).py
                command=("$py" "$script" "$data" "$work/peer" $first $last "$memory_mib") ;;
        datafusion-by-hand)
                command=("$py" benches/peers/datafusion_by_hand.py "$data" "$work/peer" $first $last "$memory_mib" "$binary") ;;
        *) echo "unknown tool $tool (see the header of $0)" >&2; exit 2 ;;
      esac
      if ! result=$(measure "$work.time" "$work.stdout" "$work-$tool.run.stderr" "${command[@]}"); then
        failures[$tool]+="run $i: $(grep -m1 -oE '(terminated by signal|exited with non-zero status) [0-9]+' "$work.time" || echo failed) after ${result% *} s, ${result#* } MiB; "
        continue
      fi
      case $tool in
        ours*) checks=$("$py" benches/peers/ours_checks.py "$work/ours" $first $last) ;;
        *) checks=$(cat "$work.stdout") ;;
      esac
      if [ $tool = ours ]; then
        scanned=$("$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("; ".join("%s %d files %d bytes" % (s["table"], s["files"], s["bytes"]) for s in d["scanned"]))' "$work.stdout")
      fi
      mv "$work-$tool.run.stderr" "$work-$tool.stderr"  # the last successful run's log
      walls[$tool]+="${result% *} "; rsss[$tool]+="${result#* } "; loads[$tool]+="$load "
      echo "    ${result% *} s, ${result#* } MiB" >&2
      echo "$checks" > "$work-$tool.checks"
    done
  done
  check_args=()
  for tool in "${tool_list[@]}"; do
    if [ -n "${walls[$tool]:-}" ]; then check_args+=("$tool=$work-$tool.checks"); fi
  done
  if ! compared=$("$py" benches/peers/compare_checks.py "${check_args[@]}"); then
    echo "check totals differ for $n rows a day, $days days:" >&2; head "$work"-*.checks >&2; exit 1
  fi
  {
    echo "### $n usage rows a day, $days day(s)$($traces && echo ", with traces"), $payload_rows payload rows ($(numfmt --to=iec "$bytes") of payload files), $runs runs each"
    echo
    echo "| tool | median wall (s) | median peak RSS (MiB) | runs (s) | load avg at start |"
    echo "|---|---:|---:|---|---|"
    for tool in "${tool_list[@]}"; do
      case $tool in
        ours) label="gateway-analytics run (all outputs, Delta writes)" ;;
        ours-same) label="gateway-analytics run --only $same,alerts (Delta writes)" ;;
        ours-four) label="gateway-analytics run --only $same (Delta writes)" ;;
        duckdb) label="DuckDB $("$py" -c 'import duckdb; print(duckdb.__version__)'), every body parsed" ;;
        polars) label="Polars $("$py" -c 'import polars; print(polars.__version__)'), every body parsed" ;;
        duckdb-by-hand) label="DuckDB by hand (no body parsed)" ;;
        polars-by-hand) label="Polars by hand (no body parsed)" ;;
        datafusion-by-hand) label="DataFusion by hand, through \`gateway-analytics query\` (no body parsed)" ;;
      esac
      if [ -z "${walls[$tool]:-}" ]; then
        echo "| $label | failed | | ${failures[$tool]:-}| |"
      else
        echo "| $label | $(tr ' ' '\n' <<< "${walls[$tool]}" | grep . | median) | $(tr ' ' '\n' <<< "${rsss[$tool]}" | grep . | median) | ${walls[$tool]}${failures[$tool]:+(failed: ${failures[$tool]:-})}| ${loads[$tool]}|"
      fi
    done
    [ ${#failures[@]} = 0 ] || { echo; echo "Failed runs are left out of the medians and the totals' comparison."; }
    echo
    echo "Totals, each compared with every other tool that computes it (cost: the body-parsing tools"
    echo "only; the hand-written peers bill every token at the input or output price):"
    echo
    echo "$compared"
    echo
    if [ -n "$scanned" ]; then echo "gateway-analytics read: $scanned"; fi
    echo
    for tool in ours ours-same ours-four; do
      if [[ ,$tools, == *,$tool,* ]] && [ -n "${walls[$tool]:-}" ]; then
        echo "Stages of \`$tool\` (its last successful run's \`-v\` log):"
        echo
        "$py" benches/stage_times.py "$work-$tool.stderr"
        echo
      fi
    done
  } | tee "$data_root/results-$name.md"
done
