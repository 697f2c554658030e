# Sourced by the scripts that run local pyspark (spark-parity.sh, staged-io-test.sh): sets
# `venv` to the shared virtualenv under ~/.cache/gateway-analytics, installing pyspark, pyarrow,
# deltalake and pandas into it once, and checks that Java (17) is there. `$1` names the caller
# in the error message.
source scripts/python-venv.sh
python_venv spark-parity pyspark==3.5.5 pyarrow==18.1.0 deltalake==1.1.4 pandas==2.2.3
command -v java >/dev/null || { echo "$1: Java (17) is needed by Spark" >&2; exit 1; }
