# Sourced by the scripts that run local pyspark (spark-parity.sh, staged-io-test.sh): sets
# `venv` to the shared virtualenv under ~/.cache/gateway-analytics, installing pyspark, pyarrow,
# deltalake and pandas into it once, and checks that Java (17) is there. `$1` names the caller
# in the error message.
venv="$HOME/.cache/gateway-analytics/venvs/spark-parity"
requirements="pyspark==3.5.5 pyarrow==18.1.0 deltalake==1.1.4 pandas==2.2.3"
if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$requirements" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
  echo "$requirements" > "$venv/.installed"
fi
command -v java >/dev/null || { echo "$1: Java (17) is needed by Spark" >&2; exit 1; }
