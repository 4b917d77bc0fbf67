#!/usr/bin/env bash
# Sets up a fresh Debian machine: system packages when missing, a virtualenv, the CPU build of torch first
# (a looser spec would pull GB of CUDA wheels), then the project itself.
set -euo pipefail
VENV="${1:-.venv}"

need_apt=()
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)
# firmware: the GNU Arm toolchain with newlib, the emulated Cortex-M4 board, and a native C compiler (host board,
# QEMU plugin)
command -v arm-none-eabi-gcc >/dev/null || need_apt+=(gcc-arm-none-eabi)
[ -f /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+fp/hard/libc_nano.a ] || need_apt+=(libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
command -v cc >/dev/null || need_apt+=(gcc libc6-dev)
# distributed studies: the test suite starts a throw-away PostgreSQL server from the Debian package
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || need_apt+=(postgresql)
if ((${#need_apt[@]})); then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "torch==2.13.0"
"$VENV/bin/pip" install -q --disable-pip-version-check -e ".[dev,test,board,timeseries,har]"
