"""The nrf52840dk board without hardware: RTT reading, the run's orchestration (flash, reset, clear, resume, read,
halt, close), cycles and PPK2 energy, and failing fast without a probe - against a recorded transcript
(tests/data/nrf52840dk_rtt_transcript.jsonl) and fake probe objects (tests/nrf_fakes.py)."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

import firmware.boards.nrf52840dk as nrf
from firmware.boards import get_board
from firmware.boards.base import BoardError, FirmwareTimeout
from firmware.build import Binary
from firmware.protocol import ProtocolError, parse
from nrf_fakes import CB_ADDR, FakeClock, FakeMeter, FakeProbe, transcript_lines

LINES = transcript_lines()
CYCLES = {"collection": 16752147, "training": 986231, "evaluation": 149819062}


def fake_binary(tmp_path: Path, inputs: Path | None = None) -> Binary:
    elf = tmp_path / "firmware-nrf52840.elf"
    elf.write_bytes(b"\x7fELF fake")
    return Binary(elf, "cortex-m4", 1000, 2000, "arm-none-eabi-gcc (fake)", "0" * 64, "nrf52840",
                  inputs=inputs)


def input_stream(tmp_path: Path, n: int) -> tuple[Path, bytes]:
    data = bytes((7 * i + 3) % 256 for i in range(n))
    path = tmp_path / "dse_inputs.bin"
    path.write_bytes(data)
    return path, data


def fake_board(probe: FakeProbe, clock: FakeClock | None = None, **options) -> nrf.Nrf52840DkBoard:
    clock = clock or FakeClock()
    return nrf.Nrf52840DkBoard(session_factory=lambda probe_id: probe, probe_lister=lambda: ["fake CMSIS-DAP"],
                               clock=clock, sleep=clock.sleep, **options)


@pytest.fixture(autouse=True)
def rtt_symbol(monkeypatch):
    monkeypatch.setattr(nrf, "symbol_address", lambda elf, name: CB_ADDR)


def read(probe: FakeProbe, timeout_s: float = 10.0) -> nrf.Transcript:
    clock = FakeClock()
    reader = nrf.RttReader(probe, CB_ADDR)
    reader.clear()
    probe.resume()
    return nrf.read_transcript(reader, probe, timeout_s, clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize("size", [16, 64, 1024])
def test_rtt_reads_the_whole_transcript_through_the_ring_buffer(size):
    """Small buffers wrap many times and split lines; the lines come out whole and in order."""
    probe = FakeProbe(size=size)
    out = read(probe)
    assert out.done and out.lines == LINES
    assert out.raw.decode() == "\n".join(LINES) + "\n"


def test_rtt_waits_for_the_control_block_and_ignores_a_stale_one():
    probe = FakeProbe(init_after=50)  # slow start-up: many polls see no control block yet
    out = read(probe)
    assert out.lines == LINES
    assert "garbage" not in out.raw.decode()


def test_rtt_halt_without_done_line_returns_what_was_written():
    """A fault: the firmware prints a fault line and stops (BKPT) without a done line."""
    lines = LINES[:4] + ['{"event":"fault","ipsr":"0x00000003","pc":"0x00001234"}']
    probe = FakeProbe(lines)
    out = read(probe)
    assert out.halted and not out.done
    assert out.lines == lines
    assert nrf.exit_code_from_lines(out.lines) == 128


def test_rtt_timeout_when_the_done_line_never_comes():
    probe = FakeProbe(LINES[:6], halt=False)  # hangs in training
    start = time.monotonic()
    with pytest.raises(FirmwareTimeout) as caught:
        read(probe, timeout_s=5)
    assert time.monotonic() - start < 5  # the fake clock: no real waiting
    assert "did not finish within 5 s" in str(caught.value)
    assert caught.value.partial_output.splitlines() == LINES[:6]


def test_rtt_rejects_corrupt_offsets():
    probe = FakeProbe()
    reader = nrf.RttReader(probe, CB_ADDR)
    assert reader.attach()  # the stale block of a previous run, never cleared
    probe.poke(CB_ADDR + 24 + 12, (4096).to_bytes(4, "little"))  # WrOff beyond the buffer
    with pytest.raises(BoardError, match="out of range"):
        reader.read()


def test_run_orchestration_on_the_recorded_transcript(tmp_path):
    probe = FakeProbe(size=128)
    board = fake_board(probe)
    result = board.run(fake_binary(tmp_path), timeout_s=60)
    # flash, reset and halt, wipe the old control block, run, read, stop the core, let the probe go
    assert probe.calls[:4] == ["flash", "reset_halt", "write 16 bytes at the control block", "resume"]
    assert probe.calls[-2:] == ["halt", "close"]
    assert probe.flashed == tmp_path / "firmware-nrf52840.elf"
    assert result.board == "nrf52840dk" and result.exit_code == 0
    assert [json.dumps(o, separators=(",", ":")) for o in result.lines] == LINES
    assert result.cycles == CYCLES
    assert result.instructions == {"collection": None, "training": None, "evaluation": None}
    assert result.versions["probe"] == "fake CMSIS-DAP (0001)"
    report = parse(result.stdout_raw)
    assert report.cycles == CYCLES and report.status == 0
    assert (report.correct, report.test_count, report.epochs_run) == (166, 178, 5)
    assert (report.stack_bytes, report.heap_bytes) == (356, 0)
    assert result.energy_mj is None and result.energy_source is None  # no PPK2: no energy measured


@pytest.mark.parametrize("down_size", [16, 32, 4096])
def test_run_feeds_the_input_stream_through_the_down_buffer(tmp_path, down_size):
    path, data = input_stream(tmp_path, 1000)
    probe = FakeProbe(size=128, inputs=len(data), down_size=down_size)
    result = fake_board(probe).run(fake_binary(tmp_path, path), timeout_s=60)
    assert bytes(probe.firmware.received) == data  # every byte, in order, through the ring buffer
    assert [json.dumps(o, separators=(",", ":")) for o in result.lines] == LINES
    assert parse(result.stdout_raw).correct == 166


def test_run_host_stops_feeding_fails_with_the_firmware_error_line(tmp_path):
    path, data = input_stream(tmp_path, 600)  # the firmware wants 1000 bytes: the host runs dry
    probe = FakeProbe(size=128, inputs=1000, down_size=32)
    result = fake_board(probe).run(fake_binary(tmp_path, path), timeout_s=60)
    assert bytes(probe.firmware.received) == data
    with pytest.raises(ProtocolError, match=r"^firmware error \(input\): input stream ended at collection sample 0 "
                                            r"\(got 600 of 1000 bytes\)$"):
        parse(result.stdout_raw)
    assert probe.calls[-2:] == ["halt", "close"]


def test_run_missing_input_stream_is_one_line(tmp_path):
    probe = FakeProbe(size=128, inputs=1000)
    with pytest.raises(BoardError, match=r"^nrf52840dk: input stream .*missing\.bin not found"):
        fake_board(probe).run(fake_binary(tmp_path, tmp_path / "missing.bin"), timeout_s=60)
    assert "flash" not in probe.calls


def test_run_inputs_for_a_firmware_without_down_buffer_fails(tmp_path):
    path, _ = input_stream(tmp_path, 100)
    probe = FakeProbe(size=128)  # a deployed-style control block: no down buffer
    with pytest.raises(BoardError, match="has no down buffer"):
        fake_board(probe).run(fake_binary(tmp_path, path), timeout_s=60)
    assert probe.calls[-2:] == ["halt", "close"]


def test_run_with_ppk2_energy(tmp_path):
    meter = FakeMeter(average_ua=5000.0)
    board = fake_board(FakeProbe(), ppk2="auto", meter_factory=lambda port, mv: meter)
    result = board.run(fake_binary(tmp_path), timeout_s=60)
    assert meter.started and meter.stopped
    # 5 mA x 3 V x (cycles / 64 MHz), in mJ
    expected = {p: 5e-3 * 3.0 * (c / 64e6) * 1e3 for p, c in CYCLES.items()}
    assert result.energy_mj == pytest.approx(expected)
    assert "PPK2" in result.energy_source
    assert result.versions["ppk2_average_ua"] == "5000.0"


def test_run_timeout_halts_the_core_and_closes_the_probe(tmp_path):
    probe = FakeProbe(LINES[:3], halt=False)
    with pytest.raises(FirmwareTimeout):
        fake_board(probe).run(fake_binary(tmp_path), timeout_s=2)
    assert probe.calls[-2:] == ["halt", "close"]


def test_no_probe_fails_fast_with_a_clear_message(tmp_path):
    board = nrf.Nrf52840DkBoard(probe_lister=lambda: [])
    ok, reason = board.available()
    assert not ok
    assert reason == ("nrf52840dk: no debug probe found: connect the nRF52840-DK over USB (the J-Link OB port, with "
                      "its power switch on) and check that `pyocd list` shows it")
    opened = []
    board = nrf.Nrf52840DkBoard(probe_lister=lambda: [], session_factory=lambda pid: opened.append(pid))
    with pytest.raises(BoardError, match="no debug probe found"):
        board.run(fake_binary(tmp_path), timeout_s=60)
    assert opened == []  # nothing touched


def test_without_pyocd_available_says_how_to_install(monkeypatch):
    monkeypatch.setattr(nrf, "pyocd_version", lambda: None)
    ok, reason = get_board("nrf52840dk").available()
    assert not ok and "pyOCD is not installed" in reason and "microtl-dse[board]" in reason


def test_probe_listing_errors_are_one_line():
    def broken():
        raise OSError("libusb\nnot found")

    ok, reason = nrf.Nrf52840DkBoard(probe_lister=broken).available()
    assert not ok and reason == "nrf52840dk: cannot list debug probes (OSError: libusb not found)"


def test_available_with_real_pyocd_and_no_probe():
    """Where pyOCD is installed (the board extra), the real probe listing finds nothing here and says so fast."""
    pytest.importorskip("pyocd")
    start = time.monotonic()
    ok, reason = get_board("nrf52840dk").available()
    assert time.monotonic() - start < 10
    if ok:
        pytest.skip(f"a debug probe is connected: {reason}")
    assert "no debug probe found" in reason


def test_board_is_registered_and_builds_with_its_platform():
    board = get_board("nrf52840dk", ppk2="COM3")
    assert (board.name, board.target, board.platform, board.ppk2) == ("nrf52840dk", "cortex-m4", "nrf52840", "COM3")
    assert board.timeout_for(64_000_000) == pytest.approx(30 + 3.0)


def test_phase_energy():
    assert nrf.phase_energy_mj({"training": 64_000_000}, 7000.0, 3.0) == {"training": pytest.approx(21.0)}


def test_rtt_constants_match_pyocd_layout():
    rtt = pytest.importorskip("pyocd.debug.rtt")
    from ctypes import sizeof

    assert sizeof(rtt.SEGGER_RTT_CB) == nrf.RTT_CB_HEADER
    assert sizeof(rtt.SEGGER_RTT_BUFFER_UP) == nrf.RTT_UP_DESCRIPTOR
    assert rtt.SEGGER_RTT_BUFFER_UP.WrOff.offset == 12


def test_symbol_address_of_the_control_block_in_a_real_elf(tmp_path, monkeypatch):
    """platform_nrf52840.c exports _SEGGER_RTT in RAM; the board finds it in the ELF (pyelftools) as nm does."""
    monkeypatch.undo()  # the real symbol lookup
    from qemu_fw_util import compile_m4, require_tools

    require_tools()
    main = tmp_path / "main.c"
    main.write_text('#include "platform.h"\nint main(void) { plat_init(); plat_write("x\\n", 2); plat_exit(0); }\n')
    elf = compile_m4([main], tmp_path / "t.elf", platform="nrf52840")
    address = nrf.symbol_address(elf, "_SEGGER_RTT")
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    assert f"{address:08x} B _SEGGER_RTT" in nm
    assert 0x20000000 <= address < 0x20040000
    with pytest.raises(BoardError, match="no symbol"):
        nrf.symbol_address(elf, "no_such_symbol")
