#!/usr/bin/env bash
# Fuzzes the response-body and trace-usage JSON readers (crates/gateway-json) for a bounded
# time. cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them for this build only.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz (once per machine)"
  cargo install cargo-fuzz --locked --quiet
fi
corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
cp fuzz/seeds/* "$corpus"/
export RUSTC_BOOTSTRAP=1
cargo fuzz run response_body --fuzz-dir fuzz \
  --target-dir "${CARGO_TARGET_DIR:-$HOME/.cache/gateway-analytics/target}/fuzz" \
  "$corpus" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 | tail -n 12
