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
venv="$HOME/.cache/gateway-analytics/venvs/spark-parity"
requirements="pyspark==3.5.5 pyarrow==18.1.0 deltalake==1.1.4 pandas==2.2.3"
if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$requirements" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
  echo "$requirements" > "$venv/.installed"
fi
command -v java >/dev/null || { echo "staged-io-test: Java (17) is needed by Spark" >&2; exit 1; }

cargo build --quiet --locked
export GATEWAY_ANALYTICS_BINARY="$CARGO_TARGET_DIR/debug/gateway-analytics"
TZ=UTC "$venv/bin/python" -m unittest discover -s jobs/src -p 'test_staged_io.py' -v
