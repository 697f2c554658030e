#!/usr/bin/env bash
# Object-store end-to-end tests: runs the demo job with its inputs AND outputs in an S3-compatible
# store (moto in server mode) and in Azure Blob Storage (Azurite, through abfss:// URIs), both on
# free loopback ports, started here and always stopped on exit.
#
#   scripts/object-store-tests.sh
#
# Checks, per store: the JSON summary equals the one of the same job on the local fixtures; the
# output Delta tables are in the store (their _delta_log objects listed and downloaded) and equal
# the local outputs, and one is read back from the store by a second Delta reader (deltalake for
# Python); a rerun gives the same summary and the same tables (one more version, no duplicate
# rows). Negative cases: a wrong secret key (S3 and Azure) and a missing bucket or container
# each fail with a non-zero exit, a message naming the input, its location and what to check,
# and no trace of the secret on stdout or stderr. Then Unity Catalog names (uc://) against a
# stand-in for the workspace's table, credential-vending and OAuth token API: a right and a
# wrong token; OAuth machine-to-machine from the environment, with a wrong client secret, and
# from a Databricks CLI profile; each cloud's vended credential shape (AWS keys on moto, an
# Azure SAS token on Azurite, a GCP OAuth token seen as the bearer token by a recording
# stand-in store); the region of [storage_options] in the AWS signature; expired credentials.
# Last, stand-ins that never answer, answer slowly or drop the connection mid-answer
# (scripts/object_store/misbehaving_server.py), as the Unity Catalog workspace and as the S3
# endpoint: each run must fail (exit 1) within its configured timeouts (a few seconds, set in
# the job file), naming the input and its location.
#
# Credentials reach the binary only through the environment (AWS_*, AZURE_STORAGE_*); the job
# files hold locations only. moto issues the S3 key pair (an IAM user created before moto is
# switched to checking signatures); Azurite gets a random account key for devstoreaccount1.
# S3 commits need no AWS_S3_ALLOW_UNSAFE_RENAME nor locking provider: delta-rs 1.x writes each
# commit with a conditional put (If-None-Match: *), which moto enforces (412 on a second put).
#
# Installs once, outside the clone: a venv under ~/.cache/gateway-analytics/venvs/object-store
# (moto, boto3, azure-storage-blob, deltalake, pyarrow) and Azurite under
# ~/.cache/gateway-analytics/npm (needs Node >= 18). Set GATEWAY_ANALYTICS_BIN to test a given
# binary instead of building the dev one.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gateway-analytics/target}"
cache="$HOME/.cache/gateway-analytics"
npm_prefix="$cache/npm"
# The newest Azurite that runs on Node 20 (3.36 and later need Node >= 21).
azurite_version="3.35.0"

# --- install (once) -------------------------------------------------------------------------
source scripts/python-venv.sh
python_venv object-store "moto[server]==5.2.5" boto3==1.44.5 azure-storage-blob==12.31.1 deltalake==1.1.4 pyarrow==18.1.0
command -v node >/dev/null || { echo "object-store tests: Node.js (>= 18) is needed by Azurite" >&2; exit 1; }
azurite_bin="$npm_prefix/node_modules/.bin/azurite-blob"
installed_azurite="$(node -p "require('$npm_prefix/node_modules/azurite/package.json').version" 2>/dev/null || true)"
if [ "$installed_azurite" != "$azurite_version" ]; then
  echo "installing azurite@$azurite_version into $npm_prefix (once)"
  mkdir -p "$npm_prefix"
  npm_log="$(mktemp)"
  if ! npm install --prefix "$npm_prefix" --no-audit --no-fund --loglevel=error \
      "azurite@$azurite_version" >"$npm_log" 2>&1; then
    cat "$npm_log" >&2
    rm -f "$npm_log"
    exit 1
  fi
  rm -f "$npm_log"
fi
python="$venv/bin/python"
harness="$repo/scripts/object_store/harness.py"

if [ -n "${GATEWAY_ANALYTICS_BIN:-}" ]; then
  binary="$GATEWAY_ANALYTICS_BIN"
else
  cargo build --quiet --locked
  binary="$CARGO_TARGET_DIR/debug/gateway-analytics"
fi

# --- a clean environment: no real cloud account can be reached by mistake ---------------------
for name in $(compgen -e); do
  case "$name" in AWS_* | AZURE_* | AZURITE_* | GOOGLE_* | DATABRICKS_* | UNITY_* | RUST_LOG) unset "$name" ;; esac
done
export AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_EC2_METADATA_DISABLED=true
# No Databricks CLI profile of this machine's user either.
export DATABRICKS_CONFIG_FILE=/nonexistent

# --- servers, stopped on any exit ---------------------------------------------------------------
work="$(mktemp -d)"
pids=()
job_pid=
checks_started=0
cleanup() {
  local status=$?
  [ -z "$job_pid" ] || kill "$job_pid" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ] && [ "$checks_started" = 0 ]; then
    for log in "$work"/moto.log "$work"/azurite.log; do
      [ -s "$log" ] && { echo "--- last lines of $log" >&2; tail -n 15 "$log" >&2; }
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r s3_port blob_port < <("$python" "$harness" free-ports 2)
s3_endpoint="http://127.0.0.1:$s3_port"
blob_url="http://127.0.0.1:$blob_port"
azure_key="$("$python" -c 'import base64, os; print(base64.b64encode(os.urandom(64)).decode())')"

"$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$work/moto.log" 2>&1 &
pids+=($!)
mkdir -p "$work/azurite"
(cd "$work/azurite" && AZURITE_ACCOUNTS="devstoreaccount1:$azure_key" exec "$azurite_bin" --blobHost 127.0.0.1 \
  --blobPort "$blob_port" --inMemoryPersistence --loose --skipApiVersionCheck --disableTelemetry \
  >"$work/azurite.log" 2>&1) &
pids+=($!)
"$python" "$harness" wait-http "$s3_endpoint/moto-api/" --pid "${pids[0]}" --timeout 60
"$python" "$harness" wait-http "$blob_url/" --pid "${pids[1]}" --timeout 60

# in_env VAR=value... -- COMMAND...: runs COMMAND with those variables exported (secrets are
# never put on a command line, where other processes could read them).
in_env() {
  (
    while [ "$1" != "--" ]; do export "${1?}"; shift; done
    shift
    exec "$@"
  )
}

# The environment each store's runs get (besides the keys, added per run).
s3_env=(AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$s3_endpoint" AWS_ALLOW_HTTP=true)
azure_env=(AZURE_STORAGE_ACCOUNT_NAME=devstoreaccount1 AZURE_STORAGE_USE_EMULATOR=true
  AZURITE_BLOB_STORAGE_URL="$blob_url")

in_env "${s3_env[@]}" -- "$python" "$harness" s3-setup --endpoint "$s3_endpoint" --bucket lake --prefix demo \
  --src fixtures/demo --credentials-out "$work/s3-credentials"
s3_key_id="$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' "$work/s3-credentials")"
s3_secret="$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' "$work/s3-credentials")"
s3_env+=(AWS_ACCESS_KEY_ID="$s3_key_id")
in_env "${azure_env[@]}" AZURE_STORAGE_ACCOUNT_KEY="$azure_key" -- \
  "$python" "$harness" azure-setup --container lake --prefix demo --src fixtures/demo

# --- checks -------------------------------------------------------------------------------------
checks_started=1
passed=0
failed=0
pass() { echo "ok    $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL  $1" >&2
  shift
  for line in "$@"; do printf '      %s\n' "$line" >&2; done
  failed=$((failed + 1))
}

window=(--from 2026-11-01 --to 2026-11-03)
# run NAME CONFIG [VAR=value...]: runs the job with only those variables added to the clean
# environment; stdout in $work/NAME.out, stderr in $work/NAME.err, exit code in $rc, whole
# seconds taken in $elapsed.
run() {
  local name="$1" config="$2" started="$SECONDS"
  shift 2
  rc=0
  # In the background so that an interrupt is handled at once (cleanup stops it too).
  (
    for var in "$@"; do export "${var?}"; done
    exec timeout 600 "$binary" run --config "$config" "${window[@]}" --format json
  ) >"$work/$name.out" 2>"$work/$name.err" &
  job_pid=$!
  wait "$job_pid" || rc=$?
  job_pid=
  elapsed=$((SECONDS - started))
}

# job TARGET ROOT: the demo job with every input under ROOT/ and the outputs at ROOT/out.
job() {
  sed -e "s#\"\.\./fixtures/demo/#\"$2/#" -e "s#^location = .*#location = \"$2/out\"#" jobs/demo.toml >"$1"
}

# The reference: the same job on the local fixtures.
job "$work/local.toml" "$repo/fixtures/demo"
sed -i "s#^location = .*#location = \"$work/local-out\"#" "$work/local.toml"
run local "$work/local.toml"
if [ "$rc" -ne 0 ]; then
  fail "local run exited $rc" "$(tail -n 5 "$work/local.err")"
  echo "object-stores: $passed passed, $failed failed"
  exit 1
fi

# check_run STORE ATTEMPT DOWNLOAD-COMMAND...: compares run ATTEMPT into STORE with the local run:
# the summary (output versions one higher per rerun), every Delta table and patch file (downloaded
# with DOWNLOAD-COMMAND), and after the first run daily_spend read straight from the store.
check_run() {
  local store="$1" attempt="$2"
  shift 2
  local -n vars="${store}_run_env"
  local root_var="${store}_root" offset=$((attempt - 1)) out="$work/$store-$attempt-outputs"
  "$python" "$harness" compare-summaries --expected "$work/local.out" --actual "$work/$store-$attempt.out" \
    --version-offset "$offset" &&
    in_env "${vars[@]}" -- "$python" "$harness" "$@" --dest "$out" &&
    "$python" "$harness" compare-outputs --expected "$work/local-out" --actual "$out" --version-offset "$offset" &&
    if [ "$attempt" = 1 ]; then
      in_env "${vars[@]}" -- "$python" "$harness" read-store-table --uri "${!root_var}/out/daily_spend" \
        --expected "$work/local-out/daily_spend"
    fi
}

# positive STORE DOWNLOAD-COMMAND...: the job with inputs and outputs under ${STORE}_root, run
# twice with ${STORE}_run_env, each run checked by check_run.
positive() {
  local store="$1"
  shift
  local -n vars="${store}_run_env"
  local root_var="${store}_root" report
  job "$work/$store.toml" "${!root_var}"
  for attempt in 1 2; do
    local label="$store: run into the store equals the local run"
    [ "$attempt" = 1 ] || label="$store: rerun is identical (one more table version, same rows)"
    run "$store-$attempt" "$work/$store.toml" "${vars[@]}"
    if [ "$rc" -ne 0 ]; then
      fail "$label" "exit code $rc" "$(tail -n 5 "$work/$store-$attempt.err")"
    elif report="$(check_run "$store" "$attempt" "$@" 2>&1)"; then
      pass "$label"
      printf '%s\n' "$report" | sed 's/^/      /'
    else
      fail "$label" "$report"
    fi
  done
}

# negative LABEL NAME CONFIG LOCATION HINT-REGEX SECRET [VAR=value...]: the run must fail, name
# the input and its location, say what to check (HINT-REGEX) and never show SECRET.
negative() {
  local label="$1" name="$2" config="$3" location="$4" hint="$5" secret="$6"
  shift 6
  run "$name" "$config" "$@"
  local problems=()
  [ "$rc" -ne 0 ] || problems+=("exit code 0")
  [ "$rc" -ne 124 ] || problems+=("timed out")
  grep -qF "input \`usage\` at $location" "$work/$name.err" ||
    problems+=("stderr does not name the input and its location ($location)")
  grep -qiE "$hint" "$work/$name.err" || problems+=("stderr does not say what to check (/$hint/)")
  if grep -qF -- "$secret" "$work/$name.out" "$work/$name.err"; then
    problems+=("the secret appears in the output")
  fi
  if [ "${#problems[@]}" -eq 0 ]; then
    pass "$label: exit $rc, $(head -c 160 "$work/$name.err")..."
  else
    fail "$label" "${problems[@]}" "exit code $rc; stderr: $(head -c 600 "$work/$name.err")"
  fi
}

credentials_hint='credential'
s3_root="s3://lake/demo"
s3_run_env=("${s3_env[@]}" AWS_SECRET_ACCESS_KEY="$s3_secret")
positive s3 s3-download --endpoint "$s3_endpoint" --bucket lake --prefix demo/out
wrong_s3_secret="wr0ngS3cretKey-gateway-analytics-ci-4d9c1f7a"
negative "s3: wrong secret key" s3-wrong-secret "$work/s3.toml" "$s3_root/endpoint_usage" "$credentials_hint" \
  "$wrong_s3_secret" "${s3_env[@]}" AWS_SECRET_ACCESS_KEY="$wrong_s3_secret"
job "$work/s3-missing.toml" "s3://gateway-analytics-absent/demo"
negative "s3: missing bucket" s3-missing-bucket "$work/s3-missing.toml" \
  "s3://gateway-analytics-absent/demo/endpoint_usage" '(bucket|container)[a-z ]* does not exist|NoSuchBucket' \
  "$s3_secret" "${s3_run_env[@]}"

azure_root="abfss://lake@devstoreaccount1.dfs.core.windows.net/demo"
azure_run_env=("${azure_env[@]}" AZURE_STORAGE_ACCOUNT_KEY="$azure_key")
positive azure azure-download --container lake --prefix demo/out
wrong_azure_key="$(printf 'wrong-azure-account-key-gateway-analytics-ci-7c1e' | base64 -w0)"
negative "azure: wrong account key" azure-wrong-key "$work/azure.toml" "$azure_root/endpoint_usage" \
  "$credentials_hint" "$wrong_azure_key" "${azure_env[@]}" AZURE_STORAGE_ACCOUNT_KEY="$wrong_azure_key"
job "$work/azure-missing.toml" "abfss://absent@devstoreaccount1.dfs.core.windows.net/demo"
negative "azure: missing container" azure-missing-container "$work/azure-missing.toml" \
  "abfss://absent@devstoreaccount1.dfs.core.windows.net/demo/endpoint_usage" \
  '(bucket|container)[a-z ]* does not exist|ContainerNotFound' "$azure_key" "${azure_run_env[@]}"

# Unity Catalog names (uc://catalog.schema.table): a stand-in for the workspace's calls (table
# lookup, credential vending, OAuth token; scripts/object_store/fake_unity_catalog.py) points
# each name at a table in one of the stores and vends that cloud's credential shape: AWS keys
# (moto), an Azure SAS token (Azurite), a GCP OAuth token, or AWS keys that have expired. The
# payload table is named the way the AI Gateway names it, from [inputs.inference_table].
read -r uc_port record_port < <("$python" "$harness" free-ports 2)
uc_token="dapi-gateway-analytics-ci-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
uc_client_id="gateway-analytics-ci-sp"
uc_client_secret="dose-gateway-analytics-ci-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
gcp_token="ya29.gateway-analytics-ci-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
in_env "${azure_env[@]}" AZURE_STORAGE_ACCOUNT_KEY="$azure_key" -- \
  "$python" "$harness" azure-sas --container lake --out "$work/azure-sas"
azure_sas="$(cat "$work/azure-sas")"
azure_sas_sig="$(printf '%s' "$azure_sas" | tr '&' '\n' | sed -n 's/^sig=//p')"
uc_tables="$("$python" -c 'import json
names = {"endpoint_usage": "endpoint_usage", "served_entities": "served_entities",
         "chat_payload": "gateway_payload", "trace_logs_1": "trace_logs"}
tables = {f"main.gateway.{n}": f"s3://lake/demo/{t}" for n, t in names.items()}
azure = "abfss://lake@devstoreaccount1.dfs.core.windows.net/demo"
tables.update({f"main.azure.{n}": {"location": f"{azure}/{t}", "vend": "azure"} for n, t in names.items()})
tables["main.gcp.endpoint_usage"] = {"location": "gs://lake/demo/endpoint_usage", "vend": "gcp"}
tables["main.aws.endpoint_usage"] = {"location": "s3://lake/demo/endpoint_usage", "vend": "aws"}
tables["main.expired.endpoint_usage"] = {"location": "s3://lake/demo/endpoint_usage", "vend": "expired"}
print(json.dumps(tables))')"
# One subshell that execs the server, so that $! is the server's pid (in_env in the background
# would leave the server running as a grandchild when cleanup stops $!).
(
  export VENDED_AWS_ACCESS_KEY_ID="$s3_key_id" VENDED_AWS_SECRET_ACCESS_KEY="$s3_secret" \
    VENDED_AZURE_SAS="$azure_sas" VENDED_GCP_TOKEN="$gcp_token" FAKE_CLIENT_ID="$uc_client_id" \
    FAKE_CLIENT_SECRET="$uc_client_secret"
  exec "$python" "$repo/scripts/object_store/fake_unity_catalog.py" "$uc_port" "$uc_token" "$uc_tables"
) >"$work/uc.log" 2>&1 &
pids+=($!)
"$python" "$harness" wait-http "http://127.0.0.1:$uc_port/" --pid "${pids[-1]}" --timeout 30
# A stand-in store that answers 404 to everything and records how each request authenticated.
"$python" "$repo/scripts/object_store/misbehaving_server.py" record "$record_port" "$work/record.log" \
  >"$work/stand-in-record.log" 2>&1 &
pids+=($!)
"$python" "$harness" wait-port "$record_port" --pid "${pids[-1]}" --timeout 30
record_url="http://127.0.0.1:$record_port"

# uc_job CONFIG SCHEMA OUTPUT [FILES]: the demo job with its inputs named uc://main.SCHEMA.*,
# its outputs at OUTPUT and its reference files (prices, teams, rate limits) under FILES
# (default: the S3 store).
uc_job() {
  sed -e "s#^usage = .*#usage = \"uc://main.$2.endpoint_usage\"#" \
    -e "s#^served_entities = .*#served_entities = \"uc://main.$2.served_entities\"#" \
    -e '/^payload = /d' -e "s#^traces = .*#traces = \"uc://main.$2.trace_logs_1\"#" \
    -e "s#\"\\.\\./fixtures/demo/#\"${4:-s3://lake/demo}/#" -e "s#^location = .*#location = \"$3\"#" \
    -e "s#^\\[output\\]#[inputs.inference_table]\\ncatalog_name = \"main\"\\nschema_name = \"$2\"\\ntable_name_prefix = \"chat\"\\n\\n[output]#" \
    jobs/demo.toml >"$1"
}
uc_job "$work/uc.toml" gateway "s3://lake/uc-out"
uc_env=(DATABRICKS_HOST="http://127.0.0.1:$uc_port" UNITY_ALLOW_HTTP_URL=true)
# uc_positive LABEL NAME CONFIG [VAR=value...]: the run must give the local run's summary.
uc_positive() {
  local label="$1" name="$2" config="$3" report
  shift 3
  run "$name" "$config" "$@"
  if [ "$rc" -ne 0 ]; then
    fail "$label" "exit code $rc" "$(tail -n 5 "$work/$name.err")"
  elif report="$("$python" "$harness" compare-summaries --expected "$work/local.out" --actual "$work/$name.out" \
    --version-offset 0 2>&1)"; then
    pass "$label"
  else
    fail "$label" "$report"
  fi
}
uc_positive "unity catalog (AWS keys, a token): uc:// inputs and an inference-table prefix give the local run's summary" \
  uc "$work/uc.toml" "${s3_run_env[@]}" "${uc_env[@]}" DATABRICKS_TOKEN="$uc_token"
wrong_uc_token="dapi-wrong-token-gateway-analytics-ci-0b7d"
negative "unity catalog: wrong token" uc-wrong-token "$work/uc.toml" "uc://main.gateway.endpoint_usage" \
  'token|credential|unauthenticated' "$wrong_uc_token" "${s3_run_env[@]}" "${uc_env[@]}" \
  DATABRICKS_TOKEN="$wrong_uc_token"

# OAuth machine-to-machine: the client id and secret are exchanged at <host>/oidc/v1/token, in
# the environment or in a profile of the Databricks CLI's configuration file. The outputs go
# to a local folder here, so the run has no AWS secret of its own: the reads work only with
# the vended keys.
uc_job "$work/uc-m2m.toml" gateway "$work/uc-m2m-out" "$repo/fixtures/demo"
uc_positive "unity catalog: OAuth machine-to-machine (DATABRICKS_CLIENT_ID / DATABRICKS_CLIENT_SECRET)" \
  uc-m2m "$work/uc-m2m.toml" "${s3_env[@]}" "${uc_env[@]}" DATABRICKS_CLIENT_ID="$uc_client_id" \
  DATABRICKS_CLIENT_SECRET="$uc_client_secret"
wrong_client_secret="dose-wrong-secret-gateway-analytics-ci-5e2a"
negative "unity catalog: wrong OAuth client secret" uc-m2m-wrong "$work/uc-m2m.toml" \
  "uc://main.gateway.endpoint_usage" 'invalid_client|credential|token' "$wrong_client_secret" "${s3_env[@]}" \
  "${uc_env[@]}" DATABRICKS_CLIENT_ID="$uc_client_id" DATABRICKS_CLIENT_SECRET="$wrong_client_secret"
printf '[DEFAULT]\nhost = https://unused.example\ntoken = dapi-not-this-one\n\n[ci]\nhost = http://127.0.0.1:%s\nclient_id = %s\nclient_secret = %s\n' \
  "$uc_port" "$uc_client_id" "$uc_client_secret" >"$work/databrickscfg"
uc_job "$work/uc-profile.toml" gateway "$work/uc-profile-out" "$repo/fixtures/demo"
uc_positive "unity catalog: a Databricks CLI profile (DATABRICKS_CONFIG_PROFILE, OAuth M2M in the profile)" \
  uc-profile "$work/uc-profile.toml" "${s3_env[@]}" UNITY_ALLOW_HTTP_URL=true \
  DATABRICKS_CONFIG_FILE="$work/databrickscfg" DATABRICKS_CONFIG_PROFILE=ci

# Azure: a SAS token for the container, vended as `azure_user_delegation_sas`; the run's
# environment has Azurite's address (as an ordinary endpoint: object_store's emulator mode
# would sign with the emulator's well-known key instead) and account name, but no account key.
uc_job "$work/uc-azure.toml" azure "$work/uc-azure-out" "$repo/fixtures/demo"
uc_positive "unity catalog: Azure SAS token vended (Azurite, no account key in the environment)" \
  uc-azure "$work/uc-azure.toml" AZURE_STORAGE_ACCOUNT_NAME=devstoreaccount1 \
  AZURE_STORAGE_ENDPOINT="$blob_url/devstoreaccount1" AZURE_ALLOW_HTTP=true "${uc_env[@]}" DATABRICKS_TOKEN="$uc_token"

# record_has LABEL NAME PATTERN: the stand-in store received a request authenticated as PATTERN.
record_has() {
  if grep -qF -- "$3" "$work/record.log" 2>/dev/null; then
    pass "$1"
  else
    fail "$1" "no request to the stand-in store carried '$3'" "exit code $rc; stderr: $(head -c 400 "$work/$2.err")"
  fi
}
# GCP: no GCS emulator here; the stand-in store (GOOGLE_BASE_URL) records that the vended OAuth
# token arrives as each request's bearer token (the table is not there, so the run then fails).
uc_job "$work/uc-gcp.toml" gcp "$work/uc-gcp-out" "$repo/fixtures/demo"
: >"$work/record.log"
run uc-gcp "$work/uc-gcp.toml" "${uc_env[@]}" DATABRICKS_TOKEN="$uc_token" GOOGLE_BASE_URL="$record_url"
record_has "unity catalog: the vended GCP OAuth token is sent as the bearer token" uc-gcp "Bearer $gcp_token"
# AWS region: Unity Catalog vends none; [storage_options] AWS_REGION (or the environment's) signs
# the requests. The stand-in store records the signature's scope.
uc_job "$work/uc-region.toml" aws "$work/uc-region-out" "$repo/fixtures/demo"
printf '\n[storage_options]\nAWS_REGION = "eu-west-1"\nmax_retries = "0"\n' >>"$work/uc-region.toml"
: >"$work/record.log"
run uc-region "$work/uc-region.toml" "${uc_env[@]}" DATABRICKS_TOKEN="$uc_token" AWS_ENDPOINT_URL="$record_url" \
  AWS_ALLOW_HTTP=true
record_has "unity catalog: [storage_options] AWS_REGION signs the reads with vended AWS keys" uc-region \
  "/eu-west-1/s3/aws4_request"
# Expired credentials: the run fails at once, naming the input and when the credentials expired.
uc_job "$work/uc-expired.toml" expired "$work/uc-expired-out" "$repo/fixtures/demo"
negative "unity catalog: expired vended credentials" uc-expired "$work/uc-expired.toml" \
  "uc://main.expired.endpoint_usage" 'expired at [0-9-]+ [0-9:]+ UTC' "$s3_secret" "${s3_env[@]}" "${uc_env[@]}" \
  DATABRICKS_TOKEN="$uc_token"

# Stand-ins that misbehave: one per mode, on free ports. Every call has a timeout, a bounded
# retry and a message naming the location, so each run fails within seconds (exit 1: a rerun may
# succeed). Unity Catalog's timeouts are set in [engine], the object stores' in [storage_options]:
# 2 s per attempt and one retry, so a run needs about 5 s; 30 s allow for a loaded machine.
read -r silent_port slow_port drop_port < <("$python" "$harness" free-ports 3)
declare -A stand_in_port=([silent]="$silent_port" [slow]="$slow_port" [drop]="$drop_port")
for mode in silent slow drop; do
  "$python" "$repo/scripts/object_store/misbehaving_server.py" "$mode" "${stand_in_port[$mode]}" \
    >"$work/stand-in-$mode.log" 2>&1 &
  pids+=($!)
  "$python" "$harness" wait-port "${stand_in_port[$mode]}" --pid "${pids[-1]}" --timeout 30
done
cp "$work/uc.toml" "$work/uc-short.toml"
printf '\n[engine]\nunity_catalog_timeout_seconds = 2\nunity_catalog_connect_timeout_seconds = 1\nunity_catalog_max_retries = 1\n' \
  >>"$work/uc-short.toml"
cp "$work/s3.toml" "$work/s3-short.toml"
printf '\n[storage_options]\ntimeout = "2s"\nconnect_timeout = "1s"\nmax_retries = "1"\nretry_timeout = "3s"\n' \
  >>"$work/s3-short.toml"
stand_in_budget=30
declare -A stand_in_hint=(
  [silent]='did not answer in time|timed out'
  [slow]='did not answer in time|timed out'
  [drop]='broke off its answer|closed before the answer was complete'
)
# unanswered LABEL NAME CONFIG LOCATION HINT-REGEX [VAR=value...]: the run must exit with 1
# within $stand_in_budget seconds, name the input and its location and say what happened.
unanswered() {
  local label="$1" name="$2" config="$3" location="$4" hint="$5"
  shift 5
  run "$name" "$config" "$@"
  local problems=()
  [ "$rc" -eq 1 ] || problems+=("exit code $rc, expected 1")
  [ "$elapsed" -le "$stand_in_budget" ] || problems+=("took ${elapsed}s, more than ${stand_in_budget}s")
  grep -qF "input \`usage\` at $location" "$work/$name.err" ||
    problems+=("stderr does not name the input and its location ($location)")
  grep -qiE "$hint" "$work/$name.err" || problems+=("stderr does not say what happened (/$hint/)")
  if [ "${#problems[@]}" -eq 0 ]; then
    pass "$label: exit 1 after ${elapsed}s, $(head -c 200 "$work/$name.err")..."
  else
    fail "$label" "${problems[@]}" "stderr: $(head -c 600 "$work/$name.err")"
  fi
}
for mode in silent slow drop; do
  what="$(printf '%s' "$mode" | sed 's/silent/never answers/; s/slow/answers slowly/; s/drop/drops the connection/')"
  stand_in="http://127.0.0.1:${stand_in_port[$mode]}"
  unanswered "unity catalog: a workspace that $what" "uc-$mode" "$work/uc-short.toml" \
    "uc://main.gateway.endpoint_usage" "${stand_in_hint[$mode]}" "${s3_run_env[@]}" DATABRICKS_HOST="$stand_in" \
    UNITY_ALLOW_HTTP_URL=true DATABRICKS_TOKEN="$uc_token"
  unanswered "s3: an endpoint that $what" "s3-$mode" "$work/s3-short.toml" "$s3_root/endpoint_usage" \
    "${stand_in_hint[$mode]}" "${s3_run_env[@]}" AWS_ENDPOINT_URL="$stand_in"
done

# No run, successful or not, may show a secret it was given.
leaks=()
for file in "$work"/*.out "$work"/*.err; do
  for secret in "$s3_secret" "$azure_key" "$wrong_s3_secret" "$wrong_azure_key" "$uc_token" "$wrong_uc_token" \
    "$uc_client_secret" "$wrong_client_secret" "$gcp_token" "$azure_sas_sig"; do
    if grep -qF -- "$secret" "$file"; then leaks+=("$(basename "$file")"); fi
  done
done
if [ "${#leaks[@]}" -eq 0 ]; then
  pass "no secret in the stdout or stderr of any run"
else
  fail "a secret appears in the output of: ${leaks[*]}"
fi

echo "object-stores: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
