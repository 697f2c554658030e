#!/usr/bin/env bash
# Browser test of `gateway-analytics report`: builds the report of the demo job (jobs/demo.toml,
# window 2026-11-01..2026-11-03) and opens it from disk in a real headless Chromium with the
# network off (scripts/report_browser_test.mjs, driven by playwright-core), then checks that
#   - the page loads from the file alone: no other request is attempted, none is answered;
#   - the console shows no error and no script error is raised;
#   - every labelled total of every chart (read from the DOM) equals the output tables, as
#     `gateway-analytics query` computes them (each label is also its exact value, rounded);
#   - a second report, after a `run --only` left the last date `partial`, says so at the top and
#     marks the date in the ledger table;
# and writes a screenshot of each section (and a grayscale and a print-layout view of the
# page) for review, into out/report-browser-test/ (ignored by git; REPORT_SCREENSHOTS overrides).
#
#   scripts/report-browser-test.sh
#
# Installs once: Debian's chromium (apt, as root or with sudo) and playwright-core (npm, into
# ~/.cache/gateway-analytics/npm-report; never a browser download). Set GATEWAY_ANALYTICS_BIN to
# test a given binary instead of building the dev one.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gateway-analytics/target}"
cache="$HOME/.cache/gateway-analytics"
npm_prefix="$cache/npm-report"
playwright_version="1.65.1"
screenshots="${REPORT_SCREENSHOTS:-$repo/out/report-browser-test}"

# --- install (once) -------------------------------------------------------------------------
if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium (once)"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  apt_log="$(mktemp)"
  if ! "${sudo_cmd[@]}" apt-get install -y --no-install-recommends chromium >"$apt_log" 2>&1; then
    "${sudo_cmd[@]}" apt-get update >"$apt_log" 2>&1
    "${sudo_cmd[@]}" apt-get install -y --no-install-recommends chromium >"$apt_log" 2>&1 || { cat "$apt_log" >&2; exit 1; }
  fi
  rm -f "$apt_log"
fi
command -v node >/dev/null || { echo "report browser test: Node.js (>= 18) is needed" >&2; exit 1; }
installed="$(node -p "require('$npm_prefix/node_modules/playwright-core/package.json').version" 2>/dev/null || true)"
if [ "$installed" != "$playwright_version" ]; then
  echo "installing playwright-core@$playwright_version into $npm_prefix (once; no browser download)"
  mkdir -p "$npm_prefix"
  npm_log="$(mktemp)"
  if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$npm_prefix" --no-audit --no-fund \
      --loglevel=error "playwright-core@$playwright_version" >"$npm_log" 2>&1; then
    cat "$npm_log" >&2
    rm -f "$npm_log"
    exit 1
  fi
  rm -f "$npm_log"
fi

if [ -n "${GATEWAY_ANALYTICS_BIN:-}" ]; then
  binary="$GATEWAY_ANALYTICS_BIN"
else
  cargo build --quiet --locked
  binary="$CARGO_TARGET_DIR/debug/gateway-analytics"
fi

# --- the demo job, its outputs in a fresh folder ---------------------------------------------
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sed -e "s#\"\.\./#\"$repo/#" -e "s#^location = .*#location = \"$work/out\"#" jobs/demo.toml > "$work/job.toml"
"$binary" run --config "$work/job.toml" --from 2026-11-01 --to 2026-11-03 --format none
"$binary" report --config "$work/job.toml" --from 2026-11-01 --to 2026-11-03 --out "$work/report.html"
# The same window after a run of one table: 2026-11-03 is then `partial` in the ledger.
cp -r "$work/out" "$work/out-partial"
sed -e "s#^location = .*#location = \"$work/out-partial\"#" "$work/job.toml" > "$work/job-partial.toml"
"$binary" run --config "$work/job-partial.toml" --from 2026-11-03 --to 2026-11-03 --only daily_spend --format none
"$binary" report --config "$work/job-partial.toml" --from 2026-11-01 --to 2026-11-03 --out "$work/report-partial.html"

rm -rf "$screenshots"
mkdir -p "$screenshots"
NODE_PATH="$npm_prefix/node_modules" node scripts/report_browser_test.mjs \
  --binary "$binary" --job "$work/job.toml" --report "$work/report.html" \
  --partial-job "$work/job-partial.toml" --partial-report "$work/report-partial.html" \
  --from 2026-11-01 --to 2026-11-03 --screenshots "$screenshots" --profile "$work/chromium-profile"
