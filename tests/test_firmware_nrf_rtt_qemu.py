"""platform_nrf52840.c's RTT output read by the nrf52840dk board's own code, with QEMU standing in for the chip and
its GDB stub for the debug probe: the real firmware (built for the nrf52840 platform), the real control block in
RAM, found by the ELF symbol, polled and drained as on the DK, and the harness's input stream written into the
down buffer while the firmware runs. What QEMU cannot show: DWT->CYCCNT reads 0 there,
so the firmware reports no cycles, and a blocking RTT write falls back to skipping (no cycle counter to time out
with); the instruction cache register of the nRF52840 does not exist on mps2-an386 (built with DSE_NRF_ICACHE=0).
"""
from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

import firmware.boards.nrf52840dk as nrf
from firmware.boards import get_board
from firmware.build import build
from firmware.codegen import generate
from vocabulary.configuration import Configuration
from qemu_fw_util import require_tools

CONFIG = Configuration("digits", "digits_cnn", "pool2", hidden=0, samples=20, epochs=5, batch=8, lr=0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GdbStubProbe:
    """ProbeSession over QEMU's GDB stub (remote serial protocol, all-stop): memory is read with the core stopped
    for a moment, as a probe without background access would. QEMU has loaded the ELF (-kernel) and waits at reset
    (-S), so flash and reset are no-ops."""

    def __init__(self, elf: Path) -> None:
        from firmware.boards.qemu import CPU, MACHINE, qemu_binary

        port = free_port()
        self.proc = subprocess.Popen(
            [qemu_binary(), "-M", MACHINE, "-cpu", CPU, "-kernel", str(elf), "-display", "none", "-monitor", "none",
             "-serial", "none", "-nodefaults", "-S", "-gdb", f"tcp:127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.proc.kill()
                    raise
                time.sleep(0.05)
        self.buffer = b""
        self.running = False
        self.command("?")

    # remote serial protocol
    def _read(self, n: int = 1) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("gdb stub closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def _packet(self) -> str:
        while self._read() != b"$":
            pass
        payload = b""
        while (c := self._read()) != b"#":
            payload += c
        self._read(2)
        self.sock.sendall(b"+")
        return payload.decode()

    def _send(self, payload: str) -> None:
        checksum = sum(payload.encode()) % 256
        self.sock.sendall(f"${payload}#{checksum:02x}".encode())
        while self._read() != b"+":
            pass

    def command(self, payload: str) -> str:
        self._send(payload)
        return self._packet()

    def _paused(self, action):
        was = self.running
        if was:
            self.sock.sendall(b"\x03")
            self._packet()  # the stop reply
            self.running = False
        try:
            return action()
        finally:
            if was:
                self.resume()

    # ProbeSession
    def flash(self, elf: Path) -> None:
        pass

    def reset_halt(self) -> None:
        pass

    def resume(self) -> None:
        self._send("c")
        self.running = True

    def halt(self) -> None:
        if self.running:
            self.sock.sendall(b"\x03")
            self._packet()
            self.running = False

    def is_halted(self) -> bool:
        return False  # plat_exit sleeps in WFI under QEMU (no halting debug): the done line ends the run

    def read_memory(self, address: int, size: int) -> bytes:
        reply = self._paused(lambda: self.command(f"m{address:x},{size:x}"))
        if reply.startswith("E"):
            raise RuntimeError(f"gdb stub: cannot read {size} bytes at {address:#x} ({reply})")
        return bytes.fromhex(reply)

    def write_memory(self, address: int, data: bytes) -> None:
        for at in range(0, len(data), 1024):  # QEMU's stub takes packets of at most 4 KB (2 hex digits a byte)
            piece = bytes(data[at:at + 1024])
            reply = self._paused(lambda: self.command(f"M{address + at:x},{len(piece):x}:{piece.hex()}"))
            assert reply == "OK", reply

    def info(self) -> dict[str, str]:
        return {"probe": "QEMU gdb stub (mps2-an386)", "target": "nrf52840 (emulated)"}

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    require_tools()
    return generate(CONFIG, tmp_path_factory.mktemp("nrf-rtt") / "gen", repeat=0, seed=0)


def test_nrf_firmware_output_over_rtt_equals_the_emulated_boards(sources, tmp_path):
    elf = build(sources, "cortex-m4", tmp_path / "nrf", ["DSE_NRF_ICACHE=0"], platform="nrf52840")
    reference = get_board("qemu-an386").run(build(sources, "cortex-m4", tmp_path / "qemu", platform="qemu"), 60)
    probes: list[GdbStubProbe] = []

    def session(probe_id):
        probes.append(GdbStubProbe(elf.path))
        return probes[0]

    board = nrf.Nrf52840DkBoard(session_factory=session, probe_lister=lambda: ["QEMU gdb stub"])
    start = time.monotonic()
    result = board.run(elf, timeout_s=60)
    assert time.monotonic() - start < 60
    assert probes[0].proc.poll() is not None  # closed: QEMU stopped
    assert result.exit_code == 0
    # the same program on another platform: the same lines, but for the memory figures of its own build
    ours = [o for o in result.lines if o["event"] != "memory"]
    theirs = [o for o in reference.lines if o["event"] != "memory"]
    assert ours == theirs
    assert result.cycles is None  # DWT reads 0 under QEMU: plat_has_cycles() said no
    report = result.report()
    assert report.features_fnv1a == sources.expected_fnv1a
    assert report.stack_bytes > 0 and report.heap_bytes == 0
    assert json.dumps(result.lines[-1]) == '{"event": "done", "status": 0}'
