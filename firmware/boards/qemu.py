"""The emulated board "qemu-an386": QEMU's mps2-an386 machine (Cortex-M4F) running the Cortex-M ELF.

Output and exit status come through Arm semihosting (platform_qemu.c); exact retired-instruction counts come from
the TCG plugin (firmware/qemu_plugin), which snapshots its counter whenever ``plat_phase_marker`` is entered.
Instructions per phase = snapshot(end) - snapshot(begin) for collection, training and evaluation.

    qemu-system-arm -M mps2-an386 -cpu cortex-m4 -kernel ELF -display none -monitor none -serial none
        -chardev file,id=semi,path=CONSOLE -semihosting-config enable=on,target=native,chardev=semi
        -icount shift=0,align=off,sleep=off -plugin libinsncount.so,out=COUNTS,marker=ADDR
    stdin /dev/null, stdout and stderr to files.

Inputs: the validation harness opens "dse_inputs.bin" through semihosting (SYS_OPEN/SYS_READ, relative to QEMU's
working directory); the runner links the binary's input stream there (`inputs`) and starts QEMU in that directory.
Without it the firmware reports the missing stream in one error line and exits with status 3.

Where the output lands (measured, QEMU 7.2): SYS_WRITE to the handle SYS_OPEN(":tt", "w") returns goes to QEMU's
own stdout (the host's fd 1), *not* to the semihosting chardev; only the console calls SYS_WRITEC/SYS_WRITE0 use the
chardev. The runner sends stdout to a file (nothing else writes there with -display/-monitor/-serial none; QEMU's
warnings go to stderr) and appends the chardev file, so the output survives a kill at the timeout.

With ``blocks=True`` the plugin also counts executions per translated block and snapshots them at every marker
(firmware/qemu_plugin/blocks.py); QemuBoard.run uses them for a static Cortex-M4 cycle *estimate* per phase
(firmware/cycle_estimate.py). The instruction counts are the same with or without it.

``-icount`` makes virtual time advance one nanosecond per instruction, so any timer-driven behaviour repeats
exactly; the instruction counts come from the plugin. Phase counts are exact and identical run to run; the total
also counts start-up and output, and under -icount includes a handful of re-executed instructions after MMIO
accesses (the FPU enable in plat_init), so it differs by ~12 from a run without -icount.
"""
from __future__ import annotations

import functools
import json
import math
import os
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import capstone

from vocabulary.phases import PHASES

from ..cycle_estimate import CycleEstimateError, estimate_cycles
from ..protocol import marker_spans, split_lines, streaming_of
from ..qemu_plugin import PluginBuildError, ensure_plugin
from ..qemu_plugin.blocks import BlockProfile, read_blocks
from .base import Board, BoardError, FirmwareTimeout, RunResult

NAME = "qemu-an386"
MACHINE = "mps2-an386"
CPU = "cortex-m4"
QEMU = "qemu-system-arm"
MARKER_SYMBOL = "plat_phase_marker"

# Emulation speed measured on this project's machines (2-core Debian 12 VM, QEMU 7.2.22, -icount shift=0 with the
# plugin loaded; the plugin itself costs nothing measurable): 520-670 M instructions/s on the int8 kernels, ~700 M/s on
# a tight ALU loop, 30-70 ms of start-up per run. Per-block counting (blocks=True) adds one inline add per block
# execution: +1-3% QEMU CPU time on quickstart firmware (medians of 9 interleaved runs, 145-221 M instructions,
# measured with the machine under load), within run-to-run noise. timeout_for() assumes a floor about 5x below
# that (other processes sharing the cores) plus a generous start-up allowance.
MIN_INSNS_PER_SECOND = 100e6
# The machine's CPU clock: QEMU hw/arm/mps2.c, "Main SYSCLK frequency in Hz" SYSCLK_FRQ 25000000 (the MPS2 FPGA
# images run the Cortex-M4 at 25 MHz from zero wait-state SSRAM). Used only to turn the cycle *estimate* into an
# estimated time; QEMU's own time base is -icount's one nanosecond per instruction.
EMULATED_CLOCK_HZ = 25_000_000
STARTUP_SECONDS = 0.5
DEFAULT_TIMEOUT_S = 600.0
INPUTS_NAME = "dse_inputs.bin"  # the name platform_qemu.c opens (firmware.codegen.INPUTS)


class QemuUnavailable(BoardError):
    """qemu-system-arm (or the host compiler for the plugin) is missing: run the set-up (`make setup`)."""


def timeout_for(instructions_upper_bound: float, *, safety: float = 1.5, min_seconds: float = 5.0) -> float:
    """Wall-clock bound (seconds) for a run of at most ``instructions_upper_bound`` guest instructions: start-up
    plus the instructions at a conservative emulation speed (MIN_INSNS_PER_SECOND, several times below the
    measured speed), times ``safety``; never below ``min_seconds``. Use it to kill hung firmware."""
    n = float(instructions_upper_bound)
    if not math.isfinite(n) or n < 0:
        raise ValueError(f"instructions_upper_bound must be a finite number >= 0, got {instructions_upper_bound!r}")
    return max(min_seconds, safety * (STARTUP_SECONDS + n / MIN_INSNS_PER_SECOND))


def qemu_binary() -> str:
    path = shutil.which(os.environ.get("MICROTL_QEMU", QEMU))
    if path is None:
        raise QemuUnavailable(f"{QEMU} not found: run `make setup` (.ci/setup.sh installs the qemu-system-arm package)")
    return path


@functools.lru_cache(maxsize=None)
def _version_of(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].strip() if out else "unknown"


def qemu_version() -> str:
    """First line of `qemu-system-arm --version`, e.g. 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-...)'."""
    return _version_of(qemu_binary())


# --- ELF symbols (ELF32 little-endian, what arm-none-eabi-gcc produces) -------------------------------------------

def elf_symbols(elf: str | os.PathLike[str]) -> dict[str, int]:
    """Name -> value of every named symbol in the ELF's .symtab (Thumb function values keep bit 0 set)."""
    data = Path(elf).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise ValueError(f"{elf}: not a 32-bit little-endian ELF")
    e_shoff, = struct.unpack_from("<I", data, 0x20)
    e_shentsize, e_shnum = struct.unpack_from("<HH", data, 0x2E)
    sections = [struct.unpack_from("<10I", data, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    symbols: dict[str, int] = {}
    for sh in sections:
        if sh[1] != 2:  # SHT_SYMTAB
            continue
        off, size, entsize = sh[4], sh[5], sh[9] or 16
        str_off = sections[sh[6]][4]
        for pos in range(off, off + size, entsize):
            st_name, st_value = struct.unpack_from("<II", data, pos)
            if st_name:
                end = data.index(b"\0", str_off + st_name)
                symbols.setdefault(data[str_off + st_name:end].decode(errors="replace"), st_value)
    return symbols


def marker_address(elf: str | os.PathLike[str], symbol: str = MARKER_SYMBOL) -> int | None:
    """Address of the first instruction of the marker function (Thumb bit cleared), None if the ELF has none."""
    value = elf_symbols(elf).get(symbol)
    return None if value is None else value & ~1


# --- running -----------------------------------------------------------------------------------------------------

@dataclass
class QemuRun:
    """One run of an ELF on qemu-an386."""

    exit_status: int
    output: str  # everything the firmware wrote (JSON lines)
    markers: list[int]  # instruction counter at each plat_phase_marker entry, in order
    total_instructions: int | None  # all guest instructions of the run (None when counting was off)
    wall_seconds: float
    qemu_version: str
    command: list[str] = field(default_factory=list)
    blocks: BlockProfile | None = None  # per-block execution counts at each marker (run_elf(blocks=True))

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.output.splitlines() if ln.strip()]

    def events(self) -> list[dict[str, Any]]:
        """The output's JSON objects (lines that are not JSON are skipped)."""
        found = []
        for ln in self.lines:
            try:
                obj = json.loads(ln)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                found.append(obj)
        return found

    @property
    def streaming(self) -> tuple[bool, int]:
        """(streaming, samples) as the firmware's hello line says (its markers then follow protocol.marker_spans)."""
        return streaming_of(self.events())

    @property
    def phase_instructions(self) -> dict[str, int]:
        streaming, samples = self.streaming
        return phase_instructions(self.markers, streaming, samples)


def phase_instructions(markers: list[int], streaming: bool = False, samples: int = 0) -> dict[str, int]:
    """{phase: the signed sum of snapshot(end) - snapshot(begin) over its spans} for the phases whose markers were
    all reached (stored: one span each; streaming: firmware.protocol.marker_spans)."""
    return {phase: sum(sign * (markers[b] - markers[a]) for a, b, sign in spans)
            for phase, spans in marker_spans(len(markers), streaming, samples).items()}


def _opt_path(path: Path) -> str:
    return str(path).replace(",", ",,")  # QEMU option syntax: a literal comma is doubled


def build_command(elf: Path, out_file: Path, *, plugin: Path | None = None, marker: int | None = None,
                  counts_file: Path | None = None, icount: bool = True,
                  blocks_file: Path | None = None) -> list[str]:
    cmd = [qemu_binary(), "-M", MACHINE, "-cpu", CPU, "-kernel", str(elf),
           "-display", "none", "-monitor", "none", "-serial", "none",
           "-chardev", f"file,id=semi,path={_opt_path(out_file)}",
           "-semihosting-config", "enable=on,target=native,chardev=semi"]
    if icount:
        cmd += ["-icount", "shift=0,align=off,sleep=off"]
    if plugin is not None:
        spec = f"{_opt_path(plugin)},out={_opt_path(counts_file or out_file.with_suffix('.counts'))}"
        if marker is not None:
            spec += f",marker={marker:#x}"
        if blocks_file is not None:
            spec += f",blocks={_opt_path(blocks_file)}"
        cmd += ["-plugin", spec]
    return cmd


def _read_counts(path: Path) -> tuple[list[int], int | None]:
    markers: list[int] = []
    total = None
    if path.exists():
        for ln in path.read_text().splitlines():
            key, _, value = ln.partition(" ")
            if key == "marker":
                markers.append(int(value))
            elif key == "total":
                total = int(value)
    return markers, total


def run_elf(elf: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT_S, count: bool = True,
            icount: bool = True, marker_symbol: str = MARKER_SYMBOL,
            workdir: str | os.PathLike[str] | None = None, blocks: bool = False,
            inputs: str | os.PathLike[str] | None = None) -> QemuRun:
    """Run ``elf`` on mps2-an386 until it exits through semihosting. Raises FirmwareTimeout (with the output so
    far) when it has not exited after ``timeout`` seconds; QEMU is killed first. ``blocks`` (needs ``count``):
    also record per-block execution counts (QemuRun.blocks). ``inputs``: the harness's input stream, offered to
    the firmware as dse_inputs.bin in QEMU's working directory."""
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise FileNotFoundError(elf)
    plugin = marker = None
    if count:
        try:
            plugin = ensure_plugin()
        except PluginBuildError as exc:
            raise QemuUnavailable(str(exc)) from exc
        marker = marker_address(elf, marker_symbol)
    version = qemu_version()
    with tempfile.TemporaryDirectory(prefix="qemu-an386-", dir=workdir) as tmp:
        tmp_dir = Path(tmp)
        stdout_file, stderr_file = tmp_dir / "stdout", tmp_dir / "stderr"
        console_file, counts_file = tmp_dir / "console", tmp_dir / "insn.counts"
        blocks_file = tmp_dir / "blocks.counts" if (count and blocks) else None
        cmd = build_command(elf, console_file, plugin=plugin, marker=marker, counts_file=counts_file,
                            icount=icount, blocks_file=blocks_file)
        if inputs is not None and Path(inputs).is_file():
            os.symlink(Path(inputs).resolve(), tmp_dir / INPUTS_NAME)

        def collect() -> str:
            # SYS_WRITE to ":tt" reaches QEMU's stdout; SYS_WRITEC/SYS_WRITE0 go to the console chardev
            parts = [f.read_text(errors="replace") for f in (stdout_file, console_file) if f.exists()]
            return "".join(parts)

        with open(stdout_file, "wb") as out_fh, open(stderr_file, "wb") as err_fh:
            start = time.monotonic()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out_fh, stderr=err_fh, cwd=tmp_dir)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                exc = FirmwareTimeout(NAME, timeout, collect())
                exc.markers = _read_counts(counts_file)[0]
                raise exc from None
            wall = time.monotonic() - start
        output = collect()
        stderr = stderr_file.read_text(errors="replace")
        markers, total = _read_counts(counts_file)
        profile = read_blocks(blocks_file) if blocks_file is not None and blocks_file.exists() else None
    if proc.returncode < 0 or (count and total is None):
        # killed by a signal, or QEMU refused to start (bad option, plugin failed to load, unreadable ELF)
        detail = " | ".join(ln.strip() for ln in (stderr.strip() or "no message").splitlines()[-5:])
        raise BoardError(f"{NAME}: qemu-system-arm failed (status {proc.returncode}): {detail}")
    return QemuRun(exit_status=proc.returncode, output=output, markers=markers, total_instructions=total,
                   wall_seconds=wall, qemu_version=version, command=cmd, blocks=profile)


class QemuBoard(Board):
    """qemu-an386: runs cortex-m4 ELFs built with the "qemu" platform (semihosting) and reports the exact
    instruction count of each phase (RunResult.instructions)."""

    name = NAME
    target = "cortex-m4"
    platform = "qemu"

    def __init__(self, *, icount: bool = True, count_instructions: bool = True, estimate_cycles: bool = True):
        self.icount = icount
        self.count_instructions = count_instructions
        self.estimate_cycles = estimate_cycles and count_instructions

    def available(self) -> tuple[bool, str]:
        try:
            version = qemu_version()
            if self.count_instructions:
                ensure_plugin()
        except Exception as exc:  # missing binary, no host compiler, plugin does not build
            return False, str(exc).splitlines()[0]
        return True, version

    @staticmethod
    def timeout_for(instructions_upper_bound: float) -> float:
        return timeout_for(instructions_upper_bound)

    def versions(self) -> dict[str, str]:
        out = {"qemu": qemu_version(), "machine": f"{MACHINE} ({CPU})"}
        if self.count_instructions:
            out["qemu_plugin"] = f"insncount {ensure_plugin().parent.name}"
        return out

    def run(self, binary, timeout_s: float = 60.0) -> RunResult:
        self.check_binary(binary)
        path = Path(getattr(binary, "path", binary))
        if not path.is_file():
            raise BoardError(f"{NAME}: ELF {path} not found")
        # scratch files beside the ELF (the study's validations/work), not in the system temp folder: a killed
        # `dse validate` leaves nothing behind there
        run = run_elf(path, timeout=timeout_s, count=self.count_instructions, icount=self.icount,
                      blocks=self.estimate_cycles, workdir=path.parent, inputs=getattr(binary, "inputs", None))
        lines, _ = split_lines(run.output)
        phases = run.phase_instructions
        instructions: dict[str, int | None] = {phase: phases.get(phase) for phase in PHASES}
        versions = self.versions()
        toolchain = getattr(binary, "toolchain_version", None)
        if toolchain:
            versions["toolchain"] = toolchain
        result = RunResult(lines=lines, exit_code=run.exit_status, stdout_raw=run.output, instructions=instructions,
                           cycles=None, wall_s=run.wall_seconds, board=NAME, versions=versions)
        if self.estimate_cycles:
            _attach_estimate(result, path, run, *run.streaming)
            if result.cycles_estimate is not None:
                versions["cycle_estimate"] = f"capstone {capstone.__version__} (estimate, static CM4 timing)"
        return result


def _attach_estimate(result: RunResult, elf: Path, run: QemuRun, streaming: bool = False, samples: int = 0) -> None:
    """Set result.cycles_estimate / seconds_estimate (per phase) and their *_source labels: a static Cortex-M4
    timing weighted by the run's block counts (firmware/cycle_estimate.py). An estimate that cannot be made leaves
    None and says why in cycles_estimate_source; the measurement itself is unaffected."""
    result.cycles_estimate = result.seconds_estimate = None
    try:
        if run.blocks is None:
            raise CycleEstimateError("the plugin wrote no block counts")
        spans = marker_spans(len(run.blocks.markers), streaming, samples)
        if run.blocks.phase_instructions(spans) != run.phase_instructions:
            raise CycleEstimateError("the block counts' instruction totals differ from the plugin's markers")
        estimate = estimate_cycles(elf, run.blocks, spans=spans)
    except (ImportError, CycleEstimateError) as exc:
        result.cycles_estimate_source = f"not estimated: {' '.join(str(exc).split())}"
        return
    if any(e.instructions != run.phase_instructions.get(phase) for phase, e in estimate.phases.items()):
        result.cycles_estimate_source = "not estimated: block counts x block sizes differ from the exact counts"
        return
    result.cycles_estimate = estimate.cycles
    result.cycles_estimate_source = estimate.describe()
    if estimate.unclassified:
        result.cycles_estimate_source += "; costed at 1 cycle (not in the tables): " + ", ".join(
            f"{name} x{count}" for name, count in sorted(estimate.unclassified.items()))
    result.seconds_estimate = estimate.seconds_at(EMULATED_CLOCK_HZ)
    result.seconds_estimate_source = (f"estimate: estimated cycles / {EMULATED_CLOCK_HZ / 1e6:g} MHz (the "
                                      "mps2-an386 SYSCLK, QEMU hw/arm/mps2.c)")
