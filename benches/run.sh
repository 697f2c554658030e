#!/usr/bin/env bash
# The benchmark: gateway-analytics against the same nightly computation in DuckDB and Polars.
#
#   benches/run.sh [--sizes 1000000,10000000] [--runs 3] [--request-bytes 3000] [--memory-mib 2048]
#                  [--tools ours,ours-same,duckdb,polars]
#
# For each size N it generates a one-day data set (N usage rows, the matching payload rows with
# ~request-bytes of request JSON) with `gateway-analytics generate --lean`, then runs, --runs
# times each under /usr/bin/time -v: `gateway-analytics run` (release build, written as Delta
# tables) with every output (ours) and with only the outputs the peers compute (ours-same:
# `--only daily_spend,hourly_errors,rate_limit_recommendations`), benches/peers/duckdb_nightly.py
# and benches/peers/polars_nightly.py (daily_spend, hourly_errors, per-minute demand statistics;
# installed from PyPI into their own virtualenv). It checks that the three computed the same totals and prints a Markdown table of
# median wall time and peak memory (max RSS), also saved under $BENCH_DATA/results-<N>.md.
#
# Data sets live in $BENCH_DATA (default ~/.cache/gateway-analytics/bench-data) and are reused
# while their manifest matches. The release build takes ~40 minutes cold on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=1000000,10000000
runs=3
request_bytes=3000
memory_mib=2048
tools=ours,ours-same,duckdb,polars
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --request-bytes) request_bytes=$2; shift 2 ;;
    --memory-mib) memory_mib=$2; shift 2 ;;
    --tools) tools=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

cache=$HOME/.cache/gateway-analytics
data_root=${BENCH_DATA:-$cache/bench-data}
venv=$cache/venvs/bench
day=2026-11-01
mkdir -p "$data_root"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import duckdb, polars, deltalake" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet duckdb==1.4.1 polars==1.34.0 deltalake==1.1.4 pyarrow==21.0.0
fi
py=$venv/bin/python

# GATEWAY_ANALYTICS_BIN runs another build (a published wheel's binary, say) instead.
binary=${GATEWAY_ANALYTICS_BIN:-}
if [ -z "$binary" ]; then
  cargo build --release --quiet --bin gateway-analytics
  binary=${CARGO_TARGET_DIR:-target}/release/gateway-analytics
fi

# Runs a command under /usr/bin/time; prints "<wall seconds> <max RSS MiB>" and keeps stdout in $3.
measure() {
  local log=$1 stdout=$2; shift 2
  /usr/bin/time -v -o "$log" "$@" > "$stdout"
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log")
  echo "$wall $rss"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

IFS=, read -ra size_list <<< "$sizes"
for n in "${size_list[@]}"; do
  data=$data_root/n$n
  if ! grep -q "\"requests_per_day\": $n," "$data/manifest.json" 2>/dev/null \
     || ! grep -q "\"request_bytes\": $request_bytes," "$data/manifest.json"; then
    echo "generating $n requests ($request_bytes-byte requests) in $data" >&2
    rm -rf "$data"
    "$binary" generate --out "$data" --days 1 --start $day --requests-per-day "$n" --request-bytes "$request_bytes" --lean
  fi
  payload_rows=$(sed -n 's/.*"payload_rows": \([0-9]*\).*/\1/p' "$data/manifest.json")
  bytes=$(du -sb "$data/gateway_payload" | cut -f1)
  work=$data_root/work-$n
  cat > "$data_root/job-$n.toml" <<TOML
[inputs]
usage = "$data/endpoint_usage"
served_entities = "$data/served_entities"
payload = "$data/gateway_payload"
prices = "$data/prices.csv"
teams = "$data/teams.csv"
rate_limits = "$data/rate_limits.json"

[output]
location = "$work/ours"

[engine]
memory_limit_mib = $memory_mib
TOML
  declare -A walls=() rsss=()
  IFS=, read -ra tool_list <<< "$tools"
  for tool in "${tool_list[@]}"; do
    for ((i = 1; i <= runs; i++)); do
      rm -rf "$work"; mkdir -p "$work/peer"
      sync; echo "  $tool run $i of $runs on $n rows" >&2
      case $tool in
        ours) result=$(measure "$work.time" "$work.stdout" "$binary" run --config "$data_root/job-$n.toml" --from $day --to $day --format json)
              checks=$("$py" benches/peers/ours_checks.py "$work/ours" $day)
              scanned=$("$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("; ".join("%s %d files %d bytes" % (s["table"], s["files"], s["bytes"]) for s in d["scanned"]))' "$work.stdout") ;;
        ours-same) result=$(measure "$work.time" "$work.stdout" "$binary" run --config "$data_root/job-$n.toml" --from $day --to $day --format json \
                     --only daily_spend,hourly_errors,rate_limit_recommendations)
                   checks=$("$py" benches/peers/ours_checks.py "$work/ours" $day) ;;
        duckdb) result=$(measure "$work.time" "$work.stdout" "$py" benches/peers/duckdb_nightly.py "$data" "$work/peer" $day "$memory_mib")
                checks=$(cat "$work.stdout") ;;
        polars) result=$(measure "$work.time" "$work.stdout" "$py" benches/peers/polars_nightly.py "$data" "$work/peer" $day "$memory_mib")
                checks=$(cat "$work.stdout") ;;
      esac
      walls[$tool]+="${result% *} "; rsss[$tool]+="${result#* } "
      echo "    ${result% *} s, ${result#* } MiB" >&2
      echo "$checks" > "$work-$tool.checks"
    done
  done
  for tool in "${tool_list[@]}"; do
    if ! cmp -s "$work-${tool_list[0]}.checks" "$work-$tool.checks"; then
      echo "check totals differ for $n rows:" >&2; head "$work"-*.checks >&2; exit 1
    fi
  done
  {
    echo "### $n usage rows, $payload_rows payload rows ($(numfmt --to=iec "$bytes") of payload files), $runs runs each"
    echo
    echo "| tool | median wall (s) | median peak RSS (MiB) | runs (s) |"
    echo "|---|---:|---:|---|"
    for tool in "${tool_list[@]}"; do
      label=$tool; [ $tool = ours ] && label="gateway-analytics run (all outputs, Delta writes)"
      [ $tool = ours-same ] && label="gateway-analytics run --only (the peers' three outputs, Delta writes)"
      [ $tool = duckdb ] && label="DuckDB $("$py" -c 'import duckdb; print(duckdb.__version__)')"
      [ $tool = polars ] && label="Polars $("$py" -c 'import polars; print(polars.__version__)')"
      echo "| $label | $(tr ' ' '\n' <<< "${walls[$tool]}" | grep . | median) | $(tr ' ' '\n' <<< "${rsss[$tool]}" | grep . | median) | ${walls[$tool]}|"
    done
    echo
    echo "Same totals from ${tools//,/, }: \`$(cat "$work-${tool_list[0]}.checks")\`"
    echo
    if [[ ,$tools, == *,ours,* ]]; then echo "gateway-analytics read: $scanned"; fi
    echo
  } | tee "$data_root/results-$n.md"
done
