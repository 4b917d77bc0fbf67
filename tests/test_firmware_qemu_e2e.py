"""The real firmware (generated sources + harness + kernels + trainer) built for cortex-m4/qemu and run on
qemu-an386: the protocol parses, the integer features and the float training are bit-identical to the host build of
the same sources, and the board reports instruction counts per phase and memory high-water marks."""
from __future__ import annotations

import pytest

from firmware.boards import get_board
from firmware.build import build
from firmware.codegen import generate
from vocabulary.configuration import Configuration

from qemu_fw_util import require_tools

CONFIG = Configuration("digits", "digits_cnn", "pool2", hidden=16, samples=100, epochs=20, batch=8, lr=0.02)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    require_tools()
    d = tmp_path_factory.mktemp("qemu-e2e")
    gen = generate(CONFIG, d / "gen", repeat=1, seed=3, test_limit=40)
    host = get_board("host").run(build(gen, "host", d / "host"), timeout_s=60)
    binary = build(gen, "cortex-m4", d / "m4", platform="qemu")
    board = get_board("qemu-an386")
    qemu = board.run(binary, timeout_s=board.timeout_for(5e8))
    return gen, host, qemu


def test_qemu_matches_host(runs):
    gen, host, qemu = runs
    assert qemu.exit_code == 0
    rq, rh = qemu.report(), host.report()
    assert rq.status == 0 and rq.features_fnv1a == gen.expected_fnv1a == rh.features_fnv1a
    assert (rq.correct, rq.test_count, rq.epochs_run, rq.best_epoch) == \
        (rh.correct, rh.test_count, rh.epochs_run, rh.best_epoch)


def test_qemu_measurements(runs):
    _, _, qemu = runs
    report = qemu.report()
    assert set(qemu.instructions) == {"collection", "training", "evaluation"}
    assert all(isinstance(v, int) and v > 0 for v in qemu.instructions.values())
    assert qemu.cycles is None and report.cycles is None  # no cycle counter under QEMU
    assert 0 < report.stack_bytes < 16384 and report.heap_bytes is not None and report.heap_bytes >= 0
    assert qemu.versions["qemu"].startswith("QEMU emulator version")


# --- the harness's input stream: fed from the host while the firmware runs; a stream that cannot feed the run fails
# --- it in one error line (exit status 3), never a hang

def _broken_streams(gen, d):
    data = gen.inputs.read_bytes()
    short = d / "short.bin"
    short.write_bytes(data[:20 + 5 * (1 + 64) + 7])  # header, 5 whole records, 7 bytes of the 6th
    other = d / "other.bin"
    other.write_bytes(data[:8] + (99).to_bytes(4, "little") + data[12:])  # a stream for 99 samples
    return {
        None: r"^firmware error \(input\): no input stream \(dse_inputs.bin\) at header 0$",
        short: r"^firmware error \(input\): input stream ended at collection sample 5 \(got 7 of 65 bytes\)$",
        other: r"^firmware error \(input\): samples differ from this build at header 2$",
    }


@pytest.mark.parametrize("board_name", ["host", "qemu-an386"])
def test_input_stream_failures_are_one_line(runs, tmp_path, board_name):
    import dataclasses

    from firmware.protocol import FirmwareReportedError, parse

    gen = runs[0]
    board = get_board(board_name)
    binary = build(gen, board.target, tmp_path / "b", platform=board.platform)
    for stream, message in _broken_streams(gen, tmp_path).items():
        result = board.run(dataclasses.replace(binary, inputs=stream), timeout_s=30)
        assert result.exit_code == 3 and result.wall_s < 20
        with pytest.raises(FirmwareReportedError, match=message):
            parse(result.stdout_raw)


def test_deployed_image_has_no_inputs_and_no_harness(runs, tmp_path):
    from firmware.boards.qemu import elf_symbols

    gen, _, _ = runs
    validation = build(gen, "cortex-m4", tmp_path / "v", platform="qemu")
    deployed = build(gen, "cortex-m4", tmp_path / "d", platform="qemu", image="deployed")
    assert deployed.image == "deployed" and deployed.inputs is None and deployed.path.name == "deployed-qemu.elf"
    assert validation.inputs == gen.inputs
    symbols = elf_symbols(deployed.path)
    assert "dse_frozen_forward" in symbols and "mt_train" in symbols and "plat_sensor_read" in symbols
    assert not {"plat_input_read", "open_inputs", "out_flush", "mt_fnv1a"} & set(symbols)
    assert "plat_input_read" in elf_symbols(validation.path)
    # the harness is code and a little RAM (output line buffer, counters): far below one stored input set
    harness_flash = validation.flash_bytes - deployed.flash_bytes
    harness_ram = validation.static_ram_bytes - deployed.static_ram_bytes
    assert 0 < harness_flash < 4096 and 0 <= harness_ram < 512
    assert deployed.flash_bytes < 40 * 1024  # digits_cnn to pool2: weights + runtime, no inputs


def test_deployed_image_runs_with_a_sensor_driver(runs, tmp_path):
    """The deployed main is the real program: linked on the host with a test sensor driver that serves the input
    stream's records as readings, it collects, trains and classifies the test inputs exactly as the validation
    build did (same correct count)."""
    import json
    import os
    import subprocess

    from firmware.build import C_DIR, COMMON_FLAGS, CORE_SOURCES, HOST_CC

    gen, host, _ = runs
    exe = tmp_path / "deployed-with-sensor"
    sensor = os.path.join(os.path.dirname(__file__), "data", "sensor_from_stream.c")
    cmd = [HOST_CC, *COMMON_FLAGS, f"-I{gen.out_dir}", f"-I{C_DIR}", str(C_DIR / "deployed.c"),
           *(str(C_DIR / name) for name in CORE_SOURCES), str(gen.out_dir / "dse_model.c"),
           str(C_DIR / "host" / "platform_host.c"), sensor, "-o", str(exe), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DSE_INPUTS": str(gen.inputs)})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])["deployed"]
    report = host.report()
    assert (result["correct"], result["test"]) == (report.correct, report.test_count) == (gen.replayed_correct, 40)
