#!/usr/bin/env bash
# Spark SQL parity: runs every query of queries/ on Apache Spark (pyspark, local mode) over the
# demo fixtures, the new AI Gateway's (Beta) fixtures and a generated data set with Beta tables,
# and compares each output with DataFusion's, row for row.
#
#   scripts/spark-parity.sh
#
# Installs pyspark, pyarrow and deltalake (the Python package, to read Delta tables into Parquet
# for Spark) once into a virtualenv under ~/.cache/gateway-analytics. Needs Java 17.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gateway-analytics/target}"
source scripts/spark-venv.sh spark-parity

# The JSON functions as Spark SQL built-ins against the gateway-json crate's cases.
(cd jobs/src && "$venv/bin/python" -m unittest test_gateway_functions)

cargo build --quiet --locked
binary="$CARGO_TARGET_DIR/debug/gateway-analytics"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

window=(--from 2026-11-01 --to 2026-11-03)

# parity NAME [WINDOW...]: runs $work/NAME.toml (writing to $work/NAME) on DataFusion and on
# Spark over WINDOW (default ${window[*]}), compares.
parity() {
  local name="$1"
  shift
  local dates=("${window[@]}")
  [ $# -eq 0 ] || dates=("$@")
  set -- "$name"
  "$binary" run --config "$work/$1.toml" "${dates[@]}" --format none
  "$binary" spark-sql --config "$work/$1.toml" "${dates[@]}" --out "$work/$1-manifest.json"
  TZ=UTC "$venv/bin/python" scripts/spark_parity.py --manifest "$work/$1-manifest.json" \
    --datafusion "$work/$1" --work "$work/$1-spark"
}

# The demo job. Relative input paths in the copy must still point at the fixtures.
sed "s#^location = .*#location = \"$work/datafusion\"#" jobs/demo.toml > "$work/datafusion.toml"
sed -i "s#\"\.\./fixtures/#\"$PWD/fixtures/#" "$work/datafusion.toml"
parity datafusion
# The same with one day of history enough for the baseline rules (the fixtures hold 3 days),
# and a mute: spend spikes, medians of an even number of days, budget projections and muted
# records on both engines.
sed -e "s#/datafusion\"#/history\"#" -e "s#^min_history_days = .*#min_history_days = 1\nmute = [{ rule = \"rate_limited_share\", endpoint = \"chat-prod\", until = \"2026-11-02\" }]#" \
  "$work/datafusion.toml" > "$work/history.toml"
grep -q '^min_history_days = 1' "$work/history.toml"
parity history

# Both gateways: the serving-endpoint tables and the new AI Gateway's usage and payload tables
# (fixtures/ai_gateway): every Beta output (fallbacks, agent sessions, MCP, tag spend, ...).
sed -e "s#^location = .*#location = \"$work/ai_gateway\"#" -e "s#\"\.\./fixtures/#\"$PWD/fixtures/#" \
  jobs/ai_gateway.toml > "$work/ai_gateway.toml"
parity ai_gateway --from 2026-11-01 --to 2026-11-02

# A generated world with the Beta tables and no serving-endpoint usage table (usage rebuilt from
# the payload; tag_spend from request tags alone), fallback chains of 1..3 attempts, sessions
# without ids, MCP calls without tokens and empty tag values.
"$binary" generate --out "$work/generated" --days 3 --requests-per-day 1500 --lean --ai-gateway --seed 11 >/dev/null
cat > "$work/generated_beta.toml" <<EOF
[inputs]
served_entities = "$work/generated/served_entities"
payload = "$work/generated/gateway_payload"
prices = "$work/generated/prices.csv"
teams = "$work/generated/teams.csv"
gateway_usage = "$work/generated/ai_gateway_usage"
gateway_payload = "$work/generated/ai_gateway_payload"

[output]
location = "$work/generated_beta"

[ai_gateway]
tag_keys = ["project", "env", "team"]
fallback_min_attempts = 5
EOF
parity generated_beta
