"""The host board: the firmware built for the host, run as a native process (fast; no device timing). The validation
harness reads its input stream from the file named by $DSE_INPUTS (the binary's `inputs`)."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from vocabulary.phases import PHASES

from ..build import toolchain_version
from ..protocol import split_lines
from .base import Board, BoardError, FirmwareTimeout, RunResult, no_instructions


HOST_TIMEOUT_S = 300.0  # a fixed, generous bound: a native process runs any pick in seconds


class HostBoard(Board):
    name = "host"
    target = "host"

    def timeout_for(self, instructions_upper_bound: float) -> float:
        return HOST_TIMEOUT_S

    def available(self) -> tuple[bool, str]:
        try:
            return True, toolchain_version("host")
        except Exception as exc:  # no compiler
            return False, str(exc)

    def run(self, binary, timeout_s: float = 60.0) -> RunResult:
        self.check_binary(binary)
        path = Path(getattr(binary, "path", binary))
        if not path.is_file():
            raise BoardError(f"host: executable {path} not found")
        inputs = getattr(binary, "inputs", None)
        env = {**os.environ, "DSE_INPUTS": str(Path(inputs).resolve()) if inputs else ""}
        start = time.monotonic()
        try:
            proc = subprocess.run([str(path)], stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s,
                                  check=False, env=env, cwd=path.parent)
        except subprocess.TimeoutExpired as exc:  # subprocess.run kills the child before raising
            partial = (exc.stdout or b"").decode(errors="replace")
            raise FirmwareTimeout(self.name, timeout_s, partial) from None
        wall = time.monotonic() - start
        out = proc.stdout.decode(errors="replace")
        lines, _ = split_lines(out)
        host_ns = {obj["phase"]: obj["cycles"] for obj in lines
                   if obj.get("event") == "cycles" and obj.get("phase") in PHASES} or None
        versions = {"toolchain": getattr(binary, "toolchain_version", "")}
        return RunResult(lines=lines, exit_code=proc.returncode, stdout_raw=out, instructions=no_instructions(),
                         cycles=None, wall_s=wall, board=self.name, versions=versions, host_ns=host_ns)
