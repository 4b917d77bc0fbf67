"""The real board nrf52840dk: flash the ELF with pyOCD (target nrf52840), reset, read the JSON lines over RTT
until the done line while feeding the validation harness's input stream into the RTT down buffer, cycles per phase
from the firmware's DWT->CYCCNT lines, optional energy from a Nordic PPK2.

Not yet run on hardware by this project: the parsing and orchestration are tested against a recorded transcript
with fake probe objects. Every piece of I/O sits behind a small object (`ProbeSession`, `Ppk2Meter`, the probe
lister) so tests replace exactly that and nothing else.

pyOCD, pyserial and ppk2-api are optional (`pip install 'microtl-dse[board]'`); without them, or without a
probe, `available()` says so at once and `run()` refuses before building anything slow.
"""
from __future__ import annotations

import json
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from elftools.elf.elffile import ELFFile

try:  # the optional "board" extra (INSTALL_HINT): without pyOCD the DK is unavailable and says how to install it
    import pyocd
    from pyocd.core.helpers import ConnectHelper
    from pyocd.flash.file_programmer import FileProgrammer
except ImportError:
    pyocd = ConnectHelper = FileProgrammer = None
try:  # the same extra: energy from a PPK2 (--ppk2)
    from ppk2_api.ppk2_api import PPK2_API, PPK2_MP
except ImportError:
    PPK2_API = PPK2_MP = None

from ..protocol import split_lines as protocol_split
from .base import Board, BoardError, FirmwareTimeout, RunResult, no_instructions

NAME = "nrf52840dk"
PYOCD_TARGET = "nrf52840"
CLOCK_HZ = 64_000_000  # nRF52840 Product Specification: 64 MHz Cortex-M4F
RTT_SYMBOL = "_SEGGER_RTT"
RTT_ID = b"SEGGER RTT"
# SEGGER_RTT_CB: char acID[16]; int MaxNumUpBuffers; int MaxNumDownBuffers; then the up-buffer descriptors
# {sName, pBuffer, SizeOfBuffer, WrOff, RdOff, Flags} (6 x uint32 each)
RTT_CB_HEADER = 24
RTT_UP_DESCRIPTOR = 24

INSTALL_HINT = "install the board extra: pip install 'microtl-dse[board]' (pyocd, pyserial, ppk2-api)"
NO_PROBE = ("no debug probe found: connect the nRF52840-DK over USB (the J-Link OB port, with its power switch on) "
            "and check that `pyocd list` shows it")


# --- the probe: the only object that touches hardware ------------------------------------------------------------

class ProbeSession(Protocol):
    """What the board needs from a debug probe connected to the nRF52840."""

    def flash(self, elf: Path) -> None: ...
    def reset_halt(self) -> None: ...
    def resume(self) -> None: ...
    def halt(self) -> None: ...
    def is_halted(self) -> bool: ...
    def read_memory(self, address: int, size: int) -> bytes: ...
    def write_memory(self, address: int, data: bytes) -> None: ...
    def info(self) -> dict[str, str]: ...
    def close(self) -> None: ...


def pyocd_version() -> str | None:
    return None if pyocd is None else str(pyocd.__version__)


def list_probes() -> list[str]:
    """Descriptions of the connected debug probes (pyOCD; never waits for one to appear)."""
    probes = ConnectHelper.get_all_connected_probes(blocking=False, print_wait_message=False)
    return [f"{p.description} ({p.unique_id})" for p in probes]


class PyocdSession:
    """ProbeSession on pyOCD: the first connected probe (or the one whose unique id contains `probe_id`)."""

    def __init__(self, probe_id: str | None = None) -> None:
        if ConnectHelper is None:
            raise BoardError(f"the DK needs pyOCD: {INSTALL_HINT}")
        self._session = ConnectHelper.session_with_chosen_probe(
            blocking=False, return_first=True, unique_id=probe_id, target_override=PYOCD_TARGET,
            options={"frequency": 4_000_000, "connect_mode": "under-reset"})
        if self._session is None:
            raise BoardError(NO_PROBE)
        self._session.open()
        self._target = self._session.board.target

    def flash(self, elf: Path) -> None:
        FileProgrammer(self._session, chip_erase="sector", smart_flash=True).program(str(elf), file_format="elf")

    def reset_halt(self) -> None:
        self._target.reset_and_halt()

    def resume(self) -> None:
        self._target.resume()

    def halt(self) -> None:
        self._target.halt()

    def is_halted(self) -> bool:
        return bool(self._target.is_halted())

    def read_memory(self, address: int, size: int) -> bytes:
        return bytes(self._target.read_memory_block8(address, size))

    def write_memory(self, address: int, data: bytes) -> None:
        self._target.write_memory_block8(address, list(data))

    def info(self) -> dict[str, str]:
        probe = self._session.probe
        return {"pyocd": pyocd_version() or "?", "probe": f"{probe.description} ({probe.unique_id})",
                "target": PYOCD_TARGET}

    def close(self) -> None:
        try:
            self._session.close()
        except Exception:  # noqa: BLE001 - closing a lost probe must not hide the run's own outcome
            pass


# --- ELF symbols ---------------------------------------------------------------------------------------------------

def symbol_address(elf: str | Path, name: str) -> int:
    """Address of symbol `name` in the ELF (pyelftools)."""
    with open(elf, "rb") as stream:
        symtab = ELFFile(stream).get_section_by_name(".symtab")
        found = symtab.get_symbol_by_name(name) if symtab is not None else None
        if found:
            return int(found[0]["st_value"])
    raise BoardError(f"{elf}: no symbol {name} (was it built for {NAME}, with platform_nrf52840.c?)")


# --- RTT: our own reader on read/write memory, so a fake probe can drive it ----------------------------------------

class RttReader:
    """Reads up buffer 0 of the RTT control block at `address` (the ELF's _SEGGER_RTT)."""

    def __init__(self, probe: ProbeSession, address: int) -> None:
        self.probe, self.address = probe, address
        self.buffer = self.size = None

    def clear(self) -> None:
        """Wipe the id of a previous run's block (RAM survives reset) so only this run's block is found."""
        self.probe.write_memory(self.address, bytes(16))

    def attach(self) -> bool:
        """True once the firmware has written a complete control block (its id last)."""
        head = self.probe.read_memory(self.address, RTT_CB_HEADER + RTT_UP_DESCRIPTOR)
        if head[:16].rstrip(b"\0") != RTT_ID:
            return False
        max_up = int.from_bytes(head[16:20], "little", signed=True)
        if max_up < 1:
            raise BoardError(f"RTT control block at {self.address:#x} has no up buffer")
        desc = head[RTT_CB_HEADER:]
        self.buffer = int.from_bytes(desc[4:8], "little")
        self.size = int.from_bytes(desc[8:12], "little")
        if self.buffer == 0 or self.size < 2:
            return False
        return True

    def read(self) -> bytes:
        """Everything the firmware has written since the last read; advances RdOff."""
        offsets = self.address + RTT_CB_HEADER + 12
        raw = self.probe.read_memory(offsets, 8)
        wr, rd = int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")
        if wr >= self.size or rd >= self.size:
            raise BoardError(f"RTT up buffer offsets out of range (WrOff {wr}, RdOff {rd}, size {self.size})")
        if wr == rd:
            return b""
        if wr > rd:
            data = self.probe.read_memory(self.buffer + rd, wr - rd)
        else:
            data = self.probe.read_memory(self.buffer + rd, self.size - rd)
            if wr:
                data += self.probe.read_memory(self.buffer, wr)
        self.probe.write_memory(offsets + 4, wr.to_bytes(4, "little"))
        return data


class RttWriter:
    """Feeds the validation harness's input stream into down buffer 0 of the control block at `address` while the
    firmware runs (platform_nrf52840.c built with DSE_HARNESS): the host owns WrOff, the firmware RdOff."""

    def __init__(self, probe: ProbeSession, address: int, data: bytes) -> None:
        self.probe, self.address, self.data = probe, address, bytes(data)
        self.sent = 0
        self.desc: int | None = None
        self.buffer = self.size = 0

    @property
    def finished(self) -> bool:
        return self.sent >= len(self.data)

    def attach(self) -> None:
        """Locate the down buffer (call once the reader has attached: the control block is complete)."""
        head = self.probe.read_memory(self.address, RTT_CB_HEADER)
        max_up = int.from_bytes(head[16:20], "little", signed=True)
        max_down = int.from_bytes(head[20:24], "little", signed=True)
        if max_down < 1:
            raise BoardError(f"{NAME}: the firmware's RTT control block has no down buffer to feed its inputs "
                             "(not a validation build with DSE_HARNESS)")
        self.desc = self.address + RTT_CB_HEADER + max_up * RTT_UP_DESCRIPTOR
        raw = self.probe.read_memory(self.desc, RTT_UP_DESCRIPTOR)
        self.buffer = int.from_bytes(raw[4:8], "little")
        self.size = int.from_bytes(raw[8:12], "little")
        if self.buffer == 0 or self.size < 2:
            raise BoardError(f"{NAME}: RTT down buffer at {self.desc:#x} is empty (size {self.size})")

    def feed(self) -> int:
        """Write as much of the rest of the stream as the buffer has room for; returns the bytes written."""
        if self.desc is None:
            self.attach()
        if self.finished:
            return 0
        raw = self.probe.read_memory(self.desc + 12, 8)
        wr, rd = int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")
        if wr >= self.size or rd >= self.size:
            raise BoardError(f"RTT down buffer offsets out of range (WrOff {wr}, RdOff {rd}, size {self.size})")
        free = rd - wr - 1 if rd > wr else self.size - (wr - rd) - 1
        chunk = self.data[self.sent:self.sent + free]
        if not chunk:
            return 0
        first = chunk[:self.size - wr]
        self.probe.write_memory(self.buffer + wr, first)
        if len(chunk) > len(first):
            self.probe.write_memory(self.buffer, chunk[len(first):])
        self.probe.write_memory(self.desc + 12, ((wr + len(chunk)) % self.size).to_bytes(4, "little"))
        self.sent += len(chunk)
        return len(chunk)


@dataclass
class Transcript:
    lines: list[str] = field(default_factory=list)
    raw: bytes = b""
    done: bool = False  # the done line arrived
    halted: bool = False  # the core stopped (plat_exit's BKPT, or a fault)


def split_lines(pending: bytes, data: bytes) -> tuple[list[str], bytes]:
    """Complete lines of pending + data, and what is left of an unfinished line."""
    buffer = pending + data
    *complete, rest = buffer.split(b"\n")
    return [line.decode("utf-8", "replace").rstrip("\r") for line in complete], rest


def is_done(line: str) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("event") == "done"


def read_transcript(reader: RttReader, probe: ProbeSession, timeout_s: float, *,
                    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                    poll_s: float = 0.005, writer: RttWriter | None = None) -> Transcript:
    """Poll RTT until the done line (or the core halts with nothing left to read); FirmwareTimeout otherwise.
    With a `writer`, feed the input stream into the down buffer between reads."""
    deadline = clock() + timeout_s
    out = Transcript()
    pending = b""
    attached = False

    def take(data: bytes) -> bool:
        nonlocal pending
        out.raw += data
        lines, pending = split_lines(pending, data)
        out.lines.extend(lines)
        return any(is_done(line) for line in lines)

    while True:
        if not attached:
            attached = reader.attach()
        data = reader.read() if attached else b""
        fed = writer.feed() if attached and writer is not None else 0
        if data and take(data):
            out.done = True
            return out
        if not data and probe.is_halted():
            if attached and (data := reader.read()):  # what the firmware wrote just before it stopped
                out.done = take(data)
            if pending:
                out.lines.append(pending.decode("utf-8", "replace"))
            out.halted = True
            return out
        if clock() >= deadline:
            raise FirmwareTimeout(NAME, timeout_s, out.raw.decode("utf-8", "replace"))
        if not data and not fed:  # more may be waiting right after a read or a write: poll again at once
            sleep(poll_s)


def cycles_from_lines(lines: list[str]) -> dict[str, int]:
    out = {}
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "cycles":
            out[str(event.get("phase"))] = int(event.get("cycles"))
    return out


def exit_code_from_lines(lines: list[str]) -> int | None:
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "done":
            return int(event.get("status", 0))
        if isinstance(event, dict) and event.get("event") == "fault":
            return 128
    return None


# --- PPK2 ----------------------------------------------------------------------------------------------------------

class Ppk2Meter:
    """A Nordic Power Profiler Kit II in source-meter mode, powering the DK at `supply_mv`, sampling the current in
    a background thread while the firmware runs. `average_ua()` is the mean over the run."""

    def __init__(self, port: str | None = None, supply_mv: int = 3000) -> None:
        if PPK2_MP is None:
            raise BoardError(f"--ppk2 needs ppk2-api: {INSTALL_HINT}")
        if port in (None, "", "auto"):
            ports = PPK2_API.list_devices()
            if not ports:
                raise BoardError("no PPK2 found: connect the Power Profiler Kit II over USB (or give --ppk2 PORT)")
            port = ports[0]
        self.port, self.supply_mv = port, supply_mv
        self._ppk2 = PPK2_MP(port, buffer_max_size_seconds=5, buffer_chunk_seconds=0.1)
        self._samples: list[float] = []
        self._stop = None
        self._thread = None

    def info(self) -> dict[str, str]:
        return {"ppk2": f"{self.port} (source meter {self.supply_mv} mV)"}

    def start(self) -> None:
        self._ppk2.get_modifiers()
        self._ppk2.use_source_meter()
        self._ppk2.set_source_voltage(self.supply_mv)
        self._ppk2.toggle_DUT_power("ON")
        self._ppk2.start_measuring()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        while not self._stop.is_set():
            data = self._ppk2.get_data()
            if data:
                samples, _ = self._ppk2.get_samples(data)
                self._samples += samples
            time.sleep(0.01)

    def stop(self) -> float:
        if self._stop is not None:
            self._stop.set()
            self._thread.join(timeout=2)
        self._ppk2.stop_measuring()
        return self.average_ua()

    def average_ua(self) -> float:
        if not self._samples:
            raise BoardError("the PPK2 returned no current samples")
        return sum(self._samples) / len(self._samples)


ENERGY_SOURCE = "measured on the PPK2: run-average current x supply voltage x phase time (DWT cycles / 64 MHz)"


def phase_energy_mj(cycles: dict[str, int], average_ua: float, supply_v: float,
                    clock_hz: int = CLOCK_HZ) -> dict[str, float]:
    """Energy per phase: average current x supply voltage x phase time."""
    return {phase: average_ua * 1e-6 * supply_v * (n / clock_hz) * 1e3 for phase, n in cycles.items()}


# --- the board -----------------------------------------------------------------------------------------------------

def _default_session(probe_id: str | None) -> ProbeSession:
    return PyocdSession(probe_id)


class Nrf52840DkBoard(Board):
    """nRF52840-DK over a debug probe (pyOCD) with RTT output; see the module docstring."""

    name = NAME
    target = "cortex-m4"
    platform = "nrf52840"  # built with c/cortexm/platform_nrf52840.c (RTT output, DWT cycles)
    clock_hz = CLOCK_HZ

    def __init__(self, *, probe_id: str | None = None, ppk2: str | None = None, supply_mv: int = 3000,
                 session_factory: Callable[[str | None], ProbeSession] | None = None,
                 probe_lister: Callable[[], list[str]] | None = None,
                 meter_factory: Callable[[str | None, int], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.probe_id, self.ppk2, self.supply_mv = probe_id, ppk2, supply_mv
        self._session_factory = session_factory or _default_session
        self._probe_lister = probe_lister
        self._meter_factory = meter_factory or (lambda port, mv: Ppk2Meter(port, mv))
        self._clock, self._sleep = clock, sleep

    # flashing and attaching take a few seconds beyond the firmware's own time
    overhead_s = 30.0

    def timeout_for(self, instructions_upper_bound: int) -> float:
        """Seconds for a program of at most that many instructions: <= 3 cycles each at 64 MHz, plus flashing."""
        return self.overhead_s + 3.0 * instructions_upper_bound / self.clock_hz

    def available(self) -> tuple[bool, str]:
        lister = self._probe_lister
        if lister is None:
            if pyocd_version() is None:
                return False, f"{NAME}: pyOCD is not installed: {INSTALL_HINT}"
            lister = list_probes
        try:
            probes = lister()
        except Exception as exc:  # noqa: BLE001 - a USB back end missing or broken: say so in one line
            return False, f"{NAME}: cannot list debug probes ({type(exc).__name__}: {' '.join(str(exc).split())})"
        if not probes:
            return False, f"{NAME}: {NO_PROBE}"
        return True, f"{NAME}: probe {probes[0]}"

    def run(self, binary, timeout_s: float) -> RunResult:
        ok, reason = self.available()
        if not ok:
            raise BoardError(reason)
        elf = Path(binary.path)
        address = symbol_address(elf, RTT_SYMBOL)
        inputs = getattr(binary, "inputs", None)
        if inputs is not None and not Path(inputs).is_file():
            raise BoardError(f"{NAME}: input stream {inputs} not found (codegen writes it beside the sources)")
        stream = Path(inputs).read_bytes() if inputs is not None else None
        meter = self._meter_factory(self.ppk2, self.supply_mv) if self.ppk2 is not None else None
        start = self._clock()
        probe = self._session_factory(self.probe_id)
        try:
            versions = {**probe.info(), "host": platform.platform()}
            probe.flash(elf)
            probe.reset_halt()
            reader = RttReader(probe, address)
            reader.clear()
            writer = RttWriter(probe, address, stream) if stream is not None else None
            if meter is not None:
                versions.update(meter.info())
                meter.start()
            probe.resume()
            try:
                transcript = read_transcript(reader, probe, timeout_s, clock=self._clock, sleep=self._sleep,
                                             writer=writer)
            finally:
                average_ua = meter.stop() if meter is not None else None
                try:
                    probe.halt()  # a timed-out firmware must not keep running
                except Exception:  # noqa: BLE001
                    pass
        finally:
            probe.close()
        wall = self._clock() - start
        objects, _ = protocol_split("\n".join(transcript.lines))
        cycles = cycles_from_lines(transcript.lines)
        code = exit_code_from_lines(transcript.lines)
        result = RunResult(lines=objects, exit_code=code if code is not None else (0 if transcript.done else 1),
                           stdout_raw="\n".join(transcript.lines) + "\n", instructions=no_instructions(),
                           cycles=cycles or None, wall_s=wall, board=self.name, versions=versions)
        if average_ua is not None and cycles:
            versions["ppk2_average_ua"] = f"{average_ua:.1f}"
            result.energy_mj = phase_energy_mj(cycles, average_ua, self.supply_mv / 1000.0, self.clock_hz)
            result.energy_source = ENERGY_SOURCE
        return result
