"""Helpers of the qemu-an386 tests: check the tools, compile small Cortex-M4F test programs with the project's
flags and runtime (firmware/c/cortexm), run them."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from firmware.build import COMMON_FLAGS, M4_FLAGS, M4_LINK, M4_RUNTIME

C_DIR = Path(__file__).resolve().parents[1] / "firmware" / "c"
CM_DIR = C_DIR / "cortexm"
TOOLS = ("arm-none-eabi-gcc", "qemu-system-arm", "cc")


def require_tools() -> None:
    """Fail (never skip: CI installs them) when the firmware tools are missing."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make setup` (.ci/setup.sh installs gcc-arm-none-eabi, "
                    "libnewlib-arm-none-eabi, qemu-system-arm and gcc)", pytrace=False)


def compile_m4(sources: list[Path], out: Path, *, include_dirs=(), defines=(), platform: str = "qemu",
               opt: str = "-O2") -> Path:
    """Compile + link C sources with the runtime (startup, syscalls, the platform) into an ELF."""
    cmd = ["arm-none-eabi-gcc", *M4_FLAGS, *COMMON_FLAGS, opt, "-g", *(f"-D{d}" for d in defines),
           f"-I{C_DIR}", f"-I{CM_DIR}", *(f"-I{d}" for d in include_dirs), *map(str, sources),
           *(str(CM_DIR / name) for name in M4_RUNTIME), str(CM_DIR / f"platform_{platform}.c"),
           "-T", str(CM_DIR / "nrf52840.ld"), *M4_LINK, "-o", str(out), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"arm-none-eabi-gcc failed:\n{' '.join(cmd)}\n{proc.stderr}")
    return out


def c_array(name: str, values, ctype: str = "q7_t", const: bool = True) -> str:
    body = ", ".join(str(int(v)) for v in values)
    return f"static {'const ' if const else ''}{ctype} {name}[{len(values)}] = {{{body}}};\n"
