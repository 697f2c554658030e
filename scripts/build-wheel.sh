#!/usr/bin/env bash
# Builds the gateway-analytics wheel (the binary packaged by maturin, see pyproject.toml) and
# smoke-tests it: installs it into a throwaway virtualenv and runs `gateway-analytics --version`.
#
#   scripts/build-wheel.sh [--release] [--out DIR]     (default DIR: target/wheels)
#
# The default, the dev profile, reuses the dev build in CARGO_TARGET_DIR: seconds after a
# `cargo build` or `cargo test`, so CI can afford it. --release builds the optimised wheel to
# deploy (a cold release build takes about 40 minutes on 2 cores). Installs maturin once into a
# virtualenv under ~/.cache/gateway-analytics. Prints the wheel's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gateway-analytics/target}"
venv="$HOME/.cache/gateway-analytics/venvs/maturin"
requirements="maturin==1.16.0"

profile=(--profile dev)
out="target/wheels"
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=(--release --strip); shift ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    *) echo "usage: scripts/build-wheel.sh [--release] [--out DIR]" >&2; exit 2 ;;
  esac
done

if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$requirements" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
  echo "$requirements" > "$venv/.installed"
fi

# One wheel per folder: a bundle uploads every *.whl it finds there.
mkdir -p "$out"
rm -f "$out"/gateway_analytics-*.whl
nice -n 10 "$venv/bin/maturin" build --locked "${profile[@]}" --out "$out"
wheels=("$out"/gateway_analytics-*.whl)
wheel="${wheels[0]}"
[ -f "$wheel" ] || { echo "build-wheel: no wheel in $out" >&2; exit 1; }

# The wheel must carry the executable as a script, and pip must put it on the scripts path.
python3 - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
if not any(n.endswith(".data/scripts/gateway-analytics") for n in names):
    sys.exit(f"build-wheel: {sys.argv[1]} has no .data/scripts/gateway-analytics: {names}")
EOF
smoke="$(mktemp -d)"
trap 'rm -rf "$smoke"' EXIT
python3 -m venv "$smoke"
"$smoke/bin/pip" install --quiet --disable-pip-version-check --no-index --no-deps "$wheel"
version="$("$smoke/bin/gateway-analytics" --version)"
"$smoke/bin/gateway-analytics" run --help > /dev/null
echo "build-wheel: $version installs and runs ($(du -h "$wheel" | cut -f1))"
echo "$wheel"
