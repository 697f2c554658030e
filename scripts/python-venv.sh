# Sourced by the scripts that need Python packages. `python_venv NAME REQUIREMENT...` makes the
# virtualenv ~/.cache/gateway-analytics/venvs/NAME hold exactly the pinned REQUIREMENTs
# (`package==version` words), installing them the first time and again whenever the list
# changes, and sets `venv` to its folder.
python_venv() {
  local name="$1"
  shift
  venv="$HOME/.cache/gateway-analytics/venvs/$name"
  local requirements="$*"
  if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$requirements" ]; then
    echo "installing $requirements into $venv (once)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    echo "$requirements" > "$venv/.installed"
  fi
}
