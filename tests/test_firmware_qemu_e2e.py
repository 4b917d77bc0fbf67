"""The real firmware (generated sources + harness + kernels + trainer) built for cortex-m4/qemu and run on
qemu-an386: the protocol parses, the integer features and the float training are bit-identical to the host build of
the same sources, and the board reports instruction counts per phase and memory high-water marks."""
from __future__ import annotations

import pytest

from firmware.boards import get_board
from firmware.build import build
from firmware.codegen import generate
from models.config import Configuration

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
