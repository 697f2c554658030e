#!/usr/bin/env bash
# Offline check of the Databricks Asset Bundle (jobs/databricks.yml and jobs/resources/*.yml):
# validates it against the Databricks CLI's JSON schema (jobs/schema/, vendored), checks what the
# schema cannot (files, job parameters, SQL parameter markers, variables) and shows that broken
# copies fail. See scripts/check_bundle.py.
#
#   scripts/check-bundle.sh
#
# Installs check-jsonschema and PyYAML once into a virtualenv under ~/.cache/gateway-analytics.
set -euo pipefail
cd "$(dirname "$0")/.."

schema="jobs/schema/bundle-jsonschema.json"

venv="$HOME/.cache/gateway-analytics/venvs/bundle-check"
requirements="check-jsonschema==0.39.0 PyYAML==6.0.3"
if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$requirements" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
  echo "$requirements" > "$venv/.installed"
fi

"$venv/bin/python" scripts/check_bundle.py --bundle jobs --schema "$schema" \
  --check-jsonschema "$venv/bin/check-jsonschema"
