#!/usr/bin/env bash
# Sets up a fresh Debian machine: system packages when missing, a virtualenv, the CPU build of torch first
# (a looser spec would pull GB of CUDA wheels), then the project itself.
set -euo pipefail
VENV="${1:-.venv}"

need_apt=()
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)
if ((${#need_apt[@]})); then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "torch==2.13.0"
"$VENV/bin/pip" install -q --disable-pip-version-check -e ".[dev]"
