"""models.head_replay against the firmware's C, bit for bit: exp/log, sequential sums, and whole trainings on the
host board (validation-loss bits every epoch, epochs, best epoch, test predictions)."""
from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from firmware.boards import get_board
from firmware.build import C_DIR, build
from firmware.codegen import generate
from models import head_replay as R
from vocabulary.configuration import Configuration

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")

STUB_MODEL_H = """#define DSE_N_SAMPLES 4u
#define DSE_N_TRAIN 3u
#define DSE_N_VAL 1u
#define DSE_FEATURE 4u
#define DSE_FEATURE_SCALE 0x1p-4f
#define DSE_HIDDEN 0u
#define DSE_CLASSES 2u
#define DSE_BATCH 2u
#define DSE_EPOCHS 1u
#define DSE_PATIENCE 1u
#define DSE_LR 0x1p-7f
#define DSE_MOMENTUM 0x1.ccccccp-1f
#define DSE_DECAY 0x1.a36e2ep-14f
#define DSE_HEAD_SEED 0u
"""

MAP_C = """#include <stdint.h>
#include "microtl.h"
void map_expf(const float *x, float *y, uint32_t n) { for (uint32_t i = 0; i < n; i++) y[i] = mt_expf(x[i]); }
void map_logf(const float *x, float *y, uint32_t n) { for (uint32_t i = 0; i < n; i++) y[i] = mt_logf(x[i]); }
"""


@pytest.fixture(scope="module")
def clib(tmp_path_factory):
    d = tmp_path_factory.mktemp("replay-c")
    (d / "dse_model.h").write_text(STUB_MODEL_H)
    (d / "map.c").write_text(MAP_C)
    so = d / "libmap.so"
    subprocess.run(["cc", "-std=c99", "-O2", "-ffp-contract=off", "-fPIC", "-shared", f"-I{d}", f"-I{C_DIR}",
                    str(C_DIR / "microtl.c"), str(d / "map.c"), "-o", str(so), "-lm"], check=True)
    lib = ctypes.CDLL(str(so))
    for name in ("map_expf", "map_logf"):
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
    return lib


def _c_map(lib, name: str, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, np.float32)
    y = np.empty_like(x)
    getattr(lib, name)(x.ctypes.data, y.ctypes.data, len(x))
    return y


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a.view(np.uint32), b.view(np.uint32))


def test_expf_bit_identical_to_firmware(clib):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-110, 95, 200_000), rng.normal(0, 3, 100_000),
                        [0.0, -0.0, 88.72284, 88.7229, -103.97208, -103.9721, -87.3, -100.0, 1e-30, -1e-30,
                         np.inf, -np.inf, np.nan, 1e30, -1e30]]).astype(np.float32)
    want, got = _c_map(clib, "map_expf", x), R.expf(x)
    bad = ~((want.view(np.uint32) == got.view(np.uint32)) | (np.isnan(want) & np.isnan(got)))
    assert not bad.any(), f"{bad.sum()} inputs differ, e.g. x={x[bad][:5]}"


def test_logf_bit_identical_to_firmware(clib):
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 0x7F800000, 300_000, dtype=np.uint32)  # every positive finite float, subnormals too
    x = np.concatenate([bits.view(np.float32), rng.uniform(0.5, 2.0, 100_000).astype(np.float32),
                        np.array([0.0, -0.0, 1.0, 1.41421356, 1.4142137, 2.0, -1.0, np.inf, np.nan, 1e-45],
                                 np.float32)])
    want, got = _c_map(clib, "map_logf", x), R.logf(x)
    bad = ~((want.view(np.uint32) == got.view(np.uint32)) | (np.isnan(want) & np.isnan(got)))
    assert not bad.any(), f"{bad.sum()} inputs differ, e.g. x={x[bad][:5]}"


def test_sums_run_left_to_right_in_float32():
    """The dense layer adds its products in C's order: a different order gives other bits on this data."""
    rng = np.random.default_rng(2)
    x = (rng.normal(0, 1, (3, 200)) * 10.0 ** rng.integers(-3, 4, (3, 200))).astype(np.float32)
    w = rng.normal(0, 1, (4, 200)).astype(np.float32)
    b = rng.normal(0, 1, 4).astype(np.float32)
    got = R._dot(w, x, b)
    want = np.empty((3, 4), np.float32)
    for n in range(3):
        for o in range(4):
            acc = np.float32(0.0)
            for k in range(200):
                acc = np.float32(acc + np.float32(w[o, k] * x[n, k]))
            want[n, o] = np.float32(acc + b[o])
    assert _same_bits(got, want)
    assert not _same_bits((x @ w.T + b).astype(np.float32), want)  # BLAS's order differs: the test can fail


CONFIGS = {
    # a chaotic draw (high lr, 12 validation samples): the study's batched trainer ends elsewhere on it
    "fc1-h0-lr.03": Configuration("digits", "digits_cnn", "fc1", hidden=0, samples=120, epochs=30, batch=8,
                                  lr=0.0307, momentum=0.9),
    "pool2-h16-b5": Configuration("digits", "digits_cnn", "pool2", hidden=16, samples=63, epochs=12, batch=5,
                                  lr=0.04, momentum=0.5, decay=1e-3, patience=3),
    "fc1-h8-val1": Configuration("digits", "digits_cnn", "fc1", hidden=8, samples=9, epochs=6, batch=4, lr=0.05),
    # no update buffer (momentum 0, batch 1): every sample updates the weights directly
    "fc1-h0-m0-b1": Configuration("digits", "digits_cnn", "fc1", hidden=0, samples=40, epochs=8, batch=1, lr=0.03,
                                  momentum=0.0, patience=3),
    "pool2-h16-m0-b1-last": Configuration("digits", "digits_cnn", "pool2", hidden=16, samples=30, epochs=10, batch=1,
                                          lr=0.05, momentum=0.0, decay=1e-3, patience=2, restore_best=False),
    # the buffer at momentum 0 is the batch's accumulator only
    "fc1-h8-m0-b6": Configuration("digits", "digits_cnn", "fc1", hidden=8, samples=50, epochs=8, batch=6, lr=0.05,
                                  momentum=0.0),
    # restore_best off: early stopping keeps the last weights
    "fc1-h0-last": Configuration("digits", "digits_cnn", "fc1", hidden=0, samples=120, epochs=30, batch=8,
                                 lr=0.0307, momentum=0.9, patience=3, restore_best=False),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_training_bit_identical_to_host_firmware(name, tmp_path):
    config = CONFIGS[name]
    gen = generate(config, tmp_path / "gen", repeat=0, seed=7)
    run = get_board("host").run(build(gen, "host", tmp_path / "build", ["DSE_TRACE_EPOCHS"]), 60)
    report = run.report()
    losses = [o["val_loss_bits"] for o in run.lines if o["event"] == "epoch"]
    assert losses == gen.replayed_val_loss_bits
    assert (report.epochs_run, report.best_epoch, report.correct) == \
        (gen.replayed_epochs_run, gen.replayed_best_epoch, gen.replayed_correct)
    assert report.accuracy == gen.replayed_accuracy
    if not config.restore_best:
        assert report.best_epoch == report.epochs_run < config.epochs  # stopped early, the last weights kept


def test_batch_larger_than_the_training_set(tmp_path):
    """One partial batch per epoch (batch 8, 5 training samples): the study's trainer, the replay and the firmware
    all take it."""
    config = Configuration("digits", "digits_cnn", "fc1", hidden=0, samples=6, epochs=4, batch=8, lr=0.05)
    gen = generate(config, tmp_path / "gen", repeat=0, seed=1)
    run = get_board("host").run(build(gen, "host", tmp_path / "build", ["DSE_TRACE_EPOCHS"]), 60)
    assert [o["val_loss_bits"] for o in run.lines if o["event"] == "epoch"] == gen.replayed_val_loss_bits
    assert run.report().correct == gen.replayed_correct
    assert gen.simulated_epochs_run >= 1
