"""Fakes of the nrf52840dk's hardware for the board's tests: a debug probe over simulated RAM in which a fake firmware
writes its JSON lines into an RTT up buffer exactly as platform_nrf52840.c lays it out, a PPK2, a clock."""
from __future__ import annotations

from pathlib import Path

RAM_BASE, RAM_SIZE = 0x20000000, 256 * 1024
CB_ADDR = 0x20001000  # where the fake "ELF" puts _SEGGER_RTT
BUF_ADDR = 0x20002000
DOWN_ADDR = 0x20003000  # the harness's RTT down buffer (inputs from the host)
NAME_ADDR = 0x20000F00
DOWN_NAME_ADDR = 0x20000F40
TRANSCRIPT = Path(__file__).resolve().parent / "data" / "nrf52840dk_rtt_transcript.jsonl"


def transcript_lines() -> list[str]:
    return TRANSCRIPT.read_text().splitlines()


class FakeClock:
    """Time advances only when the code under test sleeps (and a little per poll), so timeouts take no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1e-4
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeFirmware:
    """The firmware side of RTT: after `init_after` steps it zeroes its .bss (the control block), fills the
    control block with the id last, then writes one line at a time when it fits whole (DSE_RTT_BLOCK), and halts
    (plat_exit's BKPT) once the host has read everything. One step per probe memory read while running.

    With `inputs` (a byte count) it is a validation build: the control block has a down buffer of `down_size`
    bytes, and after its first line (hello) the firmware reads the host's input stream from it (`received`) and
    writes the rest only once all `inputs` bytes have arrived; after `patience` steps without a new byte it writes
    the harness's error line instead and stops (the host is gone)."""

    def __init__(self, probe: "FakeProbe", lines: list[str], *, size: int = 64, init_after: int = 3,
                 halt: bool = True, inputs: int | None = None, down_size: int = 32, patience: int = 200) -> None:
        self.probe, self.size, self.init_after, self.halt = probe, size, init_after, halt
        self.pending = [(line + "\n").encode() for line in lines]
        self.steps = 0
        self.initialized = False
        self.inputs, self.down_size, self.patience = inputs, down_size, patience
        self.received = bytearray()
        self.idle = 0
        self.lines_written = 0

    def u32(self, address: int, value: int) -> None:
        self.probe.poke(address, value.to_bytes(4, "little"))

    def step(self) -> None:
        self.steps += 1
        if self.steps == 1:
            self.probe.poke(CB_ADDR, bytes(72))  # startup zeroes .bss
        if self.steps < self.init_after:
            return
        desc = CB_ADDR + 24
        if not self.initialized:
            self.probe.poke(NAME_ADDR, b"Terminal\0")
            self.u32(CB_ADDR + 16, 1)
            self.u32(CB_ADDR + 20, 0 if self.inputs is None else 1)
            for i, v in enumerate((NAME_ADDR, BUF_ADDR, self.size, 0, 0, 2)):
                self.u32(desc + 4 * i, v)
            if self.inputs is not None:
                self.probe.poke(DOWN_NAME_ADDR, b"Input\0")
                for i, v in enumerate((DOWN_NAME_ADDR, DOWN_ADDR, self.down_size, 0, 0, 0)):
                    self.u32(desc + 24 + 4 * i, v)
            self.probe.poke(CB_ADDR, b"SEGGER RTT")
            self.initialized = True
            return
        waiting = self.inputs is not None and self.lines_written >= 1 and len(self.received) < self.inputs
        if waiting:
            before = len(self.received)
            self.consume(desc + 24)
            self.idle = 0 if len(self.received) > before else self.idle + 1
            if len(self.received) < self.inputs and self.idle <= self.patience:
                return
            if len(self.received) < self.inputs:  # the host is gone: the harness's error line, then exit 3
                self.pending = [(f'{{"event":"error","what":"input","detail":"input stream ended at collection '
                                 f'sample 0","got":{len(self.received)},"want":{self.inputs}}}\n').encode()]
                self.inputs = len(self.received)
        wr = int.from_bytes(self.probe.peek(desc + 12, 4), "little")
        rd = int.from_bytes(self.probe.peek(desc + 16, 4), "little")
        free = rd - wr - 1 if rd > wr else self.size - (wr - rd) - 1
        if self.pending:
            piece = self.pending[0][: self.size - 1]
            if len(piece) <= free:
                for byte in piece:
                    self.probe.poke(BUF_ADDR + wr, bytes([byte]))
                    wr = (wr + 1) % self.size
                self.u32(desc + 12, wr)
                rest = self.pending[0][len(piece):]
                if rest:
                    self.pending[0] = rest
                else:
                    self.pending.pop(0)
                    self.lines_written += 1
        elif rd == wr and self.halt:
            self.probe.halted = True


    def consume(self, down: int) -> None:
        """Read what the host has put in the down buffer (the firmware owns RdOff)."""
        wr = int.from_bytes(self.probe.peek(down + 12, 4), "little")
        rd = int.from_bytes(self.probe.peek(down + 16, 4), "little")
        while rd != wr:
            self.received += self.probe.peek(DOWN_ADDR + rd, 1)
            rd = (rd + 1) % self.down_size
        self.u32(down + 16, rd)


class FakeProbe:
    """ProbeSession over simulated RAM; RAM survives reset (as on silicon) and starts with a previous run's
    control block, so a host that did not clear it would read stale offsets."""

    def __init__(self, lines: list[str] | None = None, **firmware) -> None:
        self.ram = bytearray(RAM_SIZE)
        self.halted = True
        self.running = False
        self.calls: list[str] = []
        self.flashed: Path | None = None
        self.closed = False
        # a previous run's block: the id, and offsets that point into garbage
        self.poke(CB_ADDR, b"SEGGER RTT")
        self.poke(CB_ADDR + 16, (1).to_bytes(4, "little"))
        for i, v in enumerate((0, BUF_ADDR, 64, 40, 7, 2)):
            self.poke(CB_ADDR + 24 + 4 * i, v.to_bytes(4, "little"))
        self.poke(BUF_ADDR, b"garbage from the previous run\n" * 2)
        self.firmware = FakeFirmware(self, transcript_lines() if lines is None else lines, **firmware)

    # raw access for the fake firmware
    def poke(self, address: int, data: bytes) -> None:
        self.ram[address - RAM_BASE: address - RAM_BASE + len(data)] = data

    def peek(self, address: int, size: int) -> bytes:
        return bytes(self.ram[address - RAM_BASE: address - RAM_BASE + size])

    # ProbeSession
    def flash(self, elf: Path) -> None:
        self.calls.append("flash")
        self.flashed = Path(elf)

    def reset_halt(self) -> None:
        self.calls.append("reset_halt")
        self.halted, self.running = True, False

    def resume(self) -> None:
        self.calls.append("resume")
        self.halted, self.running = False, True

    def halt(self) -> None:
        self.calls.append("halt")
        self.halted = True

    def is_halted(self) -> bool:
        return self.halted

    def read_memory(self, address: int, size: int) -> bytes:
        if self.running and not self.halted:
            self.firmware.step()
        return self.peek(address, size)

    def write_memory(self, address: int, data: bytes) -> None:
        if address == CB_ADDR:
            self.calls.append(f"write {len(data)} bytes at the control block")
        self.poke(address, bytes(data))

    def info(self) -> dict[str, str]:
        return {"pyocd": "fake", "probe": "fake CMSIS-DAP (0001)", "target": "nrf52840"}

    def close(self) -> None:
        self.calls.append("close")
        self.closed = True


class FakeMeter:
    """A PPK2 that reports a fixed average current."""

    def __init__(self, average_ua: float = 5000.0) -> None:
        self.average, self.started, self.stopped = average_ua, False, False

    def info(self) -> dict[str, str]:
        return {"ppk2": "fake PPK2 (source meter 3000 mV)"}

    def start(self) -> None:
        self.started = True

    def stop(self) -> float:
        self.stopped = True
        return self.average
