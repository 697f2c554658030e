#!/usr/bin/env bash
# The staged-IO nightly (jobs/src/staged_io.py) end to end on a local pyspark: the launcher run
# as Databricks runs it against the demo fixtures registered as catalog tables, every output
# compared row by row with the binary's own run (jobs/src/test_staged_io.py).
#
#   scripts/staged-io-test.sh
#
# Uses the virtualenv of scripts/spark-parity.sh (installed by it when missing). Needs Java 17.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gateway-analytics/target}"
source scripts/spark-venv.sh staged-io-test

cargo build --quiet --locked
export GATEWAY_ANALYTICS_BINARY="$CARGO_TARGET_DIR/debug/gateway-analytics"
TZ=UTC "$venv/bin/python" -m unittest discover -s jobs/src -p 'test_staged_io.py' -v
