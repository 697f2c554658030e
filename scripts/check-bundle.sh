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

source scripts/python-venv.sh
python_venv bundle-check check-jsonschema==0.39.0 PyYAML==6.0.3

"$venv/bin/python" scripts/check_bundle.py --bundle jobs --schema "$schema" \
  --check-jsonschema "$venv/bin/check-jsonschema"
