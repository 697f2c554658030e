#!/usr/bin/env bash
# Builds the gateway-analytics wheel (the binary packaged by maturin, see pyproject.toml) and
# smoke-tests it.
#
#   scripts/build-wheel.sh [--release] [--aarch64] [--out DIR]   (default DIR: target/wheels)
#
# The default, the dev profile, reuses the dev build in CARGO_TARGET_DIR: seconds after a
# `cargo build` or `cargo test`, so CI can afford it. --release builds the optimised wheel to
# deploy (a cold release build takes about 40 minutes on 2 cores).
#
# --aarch64 cross-compiles for Graviton (aarch64) clusters with maturin's zig linker (zig from
# PyPI's ziglang; the Rust target is added with rustup), which links against the manylinux
# tag's glibc whatever the build machine has. Its smoke test runs the aarch64 executable under
# qemu user-mode emulation (Debian's qemu-user-static with the aarch64 glibc of
# libc6-arm64-cross and libgcc-s1-arm64-cross, installed with apt when missing): the
# demo job on fixtures/, whose run summary must list the same output tables and row counts as
# the x86-64 build's.
#
# Installs maturin once into a virtualenv under ~/.cache/gateway-analytics. Prints the wheel's
# path last.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gateway-analytics/target}"

profile=(--profile dev)
out="target/wheels"
aarch64=""
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=(--release --strip); shift ;;
    --aarch64) aarch64=1; shift ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    *) echo "usage: scripts/build-wheel.sh [--release] [--aarch64] [--out DIR]" >&2; exit 2 ;;
  esac
done

source scripts/python-venv.sh
python_venv maturin maturin==1.16.0 ziglang==0.17.0

target=()
if [ -n "$aarch64" ]; then
  rustup target add aarch64-unknown-linux-gnu >/dev/null
  # maturin finds zig through the ziglang package of its own virtualenv.
  export PATH="$venv/bin:$PATH"
  target=(--zig --target aarch64-unknown-linux-gnu)
fi

# One wheel per folder: a bundle uploads every *.whl it finds there.
mkdir -p "$out"
rm -f "$out"/gateway_analytics-*.whl
nice -n 10 "$venv/bin/maturin" build --locked "${profile[@]}" "${target[@]}" --out "$out"
wheels=("$out"/gateway_analytics-*.whl)
wheel="${wheels[0]}"
[ -f "$wheel" ] || { echo "build-wheel: no wheel in $out" >&2; exit 1; }

# The wheel must carry the executable as a script, and pip must put it on the scripts path.
python3 - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
if not any(n.endswith(".data/scripts/gateway-analytics") for n in names):
    sys.exit(f"build-wheel: {sys.argv[1]} has no .data/scripts/gateway-analytics: {names}")
PY
smoke="$(mktemp -d)"
trap 'rm -rf "$smoke"' EXIT

if [ -z "$aarch64" ]; then
  python3 -m venv "$smoke"
  "$smoke/bin/pip" install --quiet --disable-pip-version-check --no-index --no-deps "$wheel"
  version="$("$smoke/bin/gateway-analytics" --version)"
  "$smoke/bin/gateway-analytics" run --help > /dev/null
  echo "build-wheel: $version installs and runs ($(du -h "$wheel" | cut -f1))"
  echo "$wheel"
  exit 0
fi

# aarch64: pip on this machine would refuse the wheel's platform, so take the executable out of
# it, check its architecture, and run it under emulation beside the native dev build.
case "$wheel" in
  *manylinux_2_35_aarch64.whl) ;;
  *) echo "build-wheel: expected a manylinux_2_35_aarch64 wheel, got $wheel" >&2; exit 1 ;;
esac
# The emulator and the aarch64 glibc (loader, libc, libgcc_s) it loads the executable with.
sysroot=/usr/aarch64-linux-gnu
if ! command -v qemu-aarch64-static > /dev/null || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ] ||
  [ ! -e "$sysroot/lib/libgcc_s.so.1" ]; then
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo); fi
  packages=(qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross)
  "${sudo[@]}" apt-get install -y -qq "${packages[@]}" > /dev/null ||
    { "${sudo[@]}" apt-get update -qq > /dev/null && "${sudo[@]}" apt-get install -y -qq "${packages[@]}" > /dev/null; }
fi
python3 - "$wheel" "$smoke/gateway-analytics" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/gateway-analytics"))
    with open(dest, "wb") as f:
        f.write(z.read(name))
os.chmod(dest, 0o755)
with open(dest, "rb") as f:
    header = f.read(20)
# ELF, 64-bit, machine 0xB7 (EM_AARCH64) at offset 18, little-endian.
if header[:4] != b"\x7fELF" or header[4] != 2 or int.from_bytes(header[18:20], "little") != 0xB7:
    sys.exit(f"build-wheel: the wheel's executable is not an aarch64 ELF file: {header!r}")
PY
emulated=(qemu-aarch64-static -L "$sysroot" "$smoke/gateway-analytics")
version="$("${emulated[@]}" --version)"
# The demo job on the bundled fixtures, once emulated and once natively, each into its own
# folder: same tables, same rows.
cargo build --locked -q --bin gateway-analytics
native="$CARGO_TARGET_DIR/debug/gateway-analytics"
for arch in aarch64 x86_64; do
  sed -e "s#\.\./fixtures/#$PWD/fixtures/#" -e "s#\.\./out/demo#$smoke/out-$arch#" jobs/demo.toml > "$smoke/$arch.toml"
done
demo=(--from 2026-11-01 --to 2026-11-03 --format json)
"${emulated[@]}" run --config "$smoke/aarch64.toml" "${demo[@]}" > "$smoke/aarch64.json"
"$native" run --config "$smoke/x86_64.toml" "${demo[@]}" > "$smoke/x86_64.json"
python3 - "$smoke/aarch64.json" "$smoke/x86_64.json" <<'PY2'
import json, sys
def tables(path):
    with open(path) as f:
        summary = json.load(f)
    return {t["table"]: t["rows"] for t in summary["outputs"]}, summary["totals"]
emulated, native = tables(sys.argv[1]), tables(sys.argv[2])
if emulated != native or not native[0]:
    sys.exit(f"build-wheel: the aarch64 build's demo run differs from the x86-64 build's:\n{emulated}\n{native}")
print(f"build-wheel: aarch64 demo run under qemu: {len(native[0])} output tables, same rows and totals as x86-64")
PY2
echo "build-wheel: $version (aarch64, emulated) runs the demo job ($(du -h "$wheel" | cut -f1))"
echo "$wheel"
