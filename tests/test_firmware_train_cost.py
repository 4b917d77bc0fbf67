"""The training cost of our firmware is a function of what a study knows (issue 4): the trainer's step is compiled
the same whatever the sample count and batch size, and the model's heap-sort counts replay the firmware's shuffle."""
from __future__ import annotations

import shutil
import subprocess
from math import ceil, log2
from pathlib import Path

import numpy as np
import pytest

from cost_models.microtl_dse import model as fm
from cost_models.workload import workload_from_config
from vocabulary.configuration import Configuration
from models.prng import rand_u32, shuffle

from firmware.build import ARM_CC, C_DIR, COMMON_FLAGS, M4_FLAGS

ARM_OBJCOPY = "arm-none-eabi-objcopy"

HEADER = """#include <stdint.h>
#define DSE_N_SAMPLES {n}u
#define DSE_N_TRAIN {ntr}u
#define DSE_N_VAL {nval}u
#define DSE_FEATURE 64u
#define DSE_FEATURE_SCALE 0x1p-2f
#define DSE_HIDDEN {hidden}u
#define DSE_CLASSES 3u
#define DSE_BATCH {batch}u
#define DSE_EPOCHS 20u
#define DSE_PATIENCE 5u
#define DSE_LR 0x1.27b604p-6f
#define DSE_MOMENTUM 0x1.ccccccp-1f
#define DSE_DECAY 0x1.a36e2ep-14f
#define DSE_HEAD_SEED 0xdb2cd7e7u
"""


def _step_code(tmp: Path, n: int, batch: int = 4, hidden: int = 8) -> bytes:
    """Machine code of mt_step in microtl.c built as the firmware build does for n stored samples (literal pools
    hold relocation addends: each variable has its own section, so they are 0 whatever the array sizes)."""
    nval = max(1, round(n * 0.1))
    d = tmp / f"n{n}-b{batch}-h{hidden}"
    d.mkdir()
    (d / "dse_model.h").write_text(HEADER.format(n=n, ntr=n - nval, nval=nval, batch=batch, hidden=hidden))
    obj, code = d / "microtl.o", d / "step.bin"
    subprocess.run([ARM_CC, *M4_FLAGS, *COMMON_FLAGS, f"-I{d}", f"-I{C_DIR}", "-c", str(C_DIR / "microtl.c"), "-o", str(obj)], check=True,
                   capture_output=True)
    subprocess.run([ARM_OBJCOPY, "-O", "binary", "--only-section=.text.mt_step", str(obj), str(code)], check=True,
                   capture_output=True)
    return code.read_bytes()


@pytest.mark.skipif(shutil.which(ARM_CC) is None or shutil.which(ARM_OBJCOPY) is None,
                    reason="arm-none-eabi toolchain not installed")
def test_training_step_is_compiled_the_same_for_every_sample_count(tmp_path):
    """Inlined, GCC specialised the step on DSE_N_TRAIN (N = 90 retired 25% more instructions per sample than
    N = 30 or 200 with the same head); the cost model needs one code for every N. 81 and 27 training samples leave
    a partial last batch of 4, 180 does not."""
    codes = {n: _step_code(tmp_path, n) for n in (30, 90, 200)}
    assert len(codes[90]) > 200
    assert codes[30] == codes[90] == codes[200]


@pytest.mark.skipif(shutil.which(ARM_CC) is None or shutil.which(ARM_OBJCOPY) is None,
                    reason="arm-none-eabi toolchain not installed")
@pytest.mark.parametrize("hidden", [0, 8])
def test_training_step_is_compiled_the_same_for_every_batch_size(tmp_path, hidden):
    """From the batch arrays' bounds and the call site's range of nb, GCC specialised the step's batch loops on
    DSE_BATCH: at batch 2 training retired 30% fewer instructions than the cost model's counts (measured on
    qemu-an386, digits fc1 h0 and conv1 h8), while batch 3-32 agreed within 0.3%. One code for every batch size."""
    codes = {b: _step_code(tmp_path, 90, b, hidden) for b in (1, 2, 3, 4, 16, 32)}
    assert len(codes[4]) > 150
    assert len(set(codes.values())) == 1, {b: len(c) for b, c in codes.items()}


def _replayed_order(keys: list[int]) -> list[int]:
    """fm._heap_sort's ordering, for comparison with the prng's shuffle."""
    order, _, _ = fm._heap_sort(keys)
    return order


@pytest.mark.parametrize("n", [2, 3, 17, 64, 243])
def test_heap_sort_replay_orders_like_the_firmware_shuffle(n):
    keys = [int(k) for k in rand_u32(11, 0x2000 + 3, np.arange(n))]
    assert _replayed_order(keys) == list(shuffle(11, 3, n))


def test_heap_sort_work_is_within_the_textbook_bounds():
    for n in (18, 81, 243, 1000):
        compares, sifts = fm.heap_sort_work(n)
        assert n * log2(n) < compares < 2 * n * log2(n)
        assert 0.4 * compares < sifts < 0.5 * compares
    assert fm.heap_sort_work(1) == (0.0, 0.0)


def test_training_counts_follow_the_trainer_loops():
    c = Configuration(task="digits", model="digits_cnn", cut="fc1", hidden=8, samples=90, epochs=10, batch=4)
    w = workload_from_config(c, 3)
    assert (w.train_samples, w.val_samples) == (81, 9)
    k = fm.instruction_counts("training", w, 5, 100, best_epoch=3)
    batches = ceil(81 / 4)  # 20 full batches and one of 1
    params = 64 * 8 + 8 + 8 * 3 + 3
    assert k["batches"] == 5 * batches and k["parameter_updates"] == 5 * batches * params
    assert k["gradient_rows"] == 5 * 81 * (8 + 3)  # one sample at a time: every output's row per sample
    assert k["gradient_macs"] == 5 * 81 * 64 * 8 and k["hidden_macs"] == 5 * 81 * 8 * 3
    assert k["forward_macs"] == 5 * 90 * (64 * 8 + 8 * 3)  # validation samples go forward too
    assert k["train_samples"] == 5 * 81 and k["val_samples"] == 5 * 9
    assert k["parameter_copies"] == (3 + 2) * params  # start, 3 improvements at most, restore
    assert k["shuffle_compares"] == 5 * fm.heap_sort_work(81)[0]
    # restore_best off: no copy of the weights at all
    off = workload_from_config(Configuration(task="digits", model="digits_cnn", cut="fc1", hidden=8, samples=90,
                                             epochs=10, batch=4, restore_best=False), 3)
    assert fm.instruction_counts("training", off, 5, 100, best_epoch=3)["parameter_copies"] == 0
    assert k["direct_updates"] == 0
    # momentum 0, batch 1: no update buffer, every sample updates every parameter directly
    direct = workload_from_config(Configuration(task="digits", model="digits_cnn", cut="fc1", hidden=8, samples=90,
                                                epochs=10, batch=1, momentum=0.0), 3)
    d = fm.instruction_counts("training", direct, 5, 100, best_epoch=3)
    assert d["parameter_updates"] == 0 and d["direct_updates"] == 5 * 81 * params
    assert d["gradient_macs"] == k["gradient_macs"] and d["batches"] == 5 * 81


WORK_C = """#include <stdio.h>
#include "dse_model.h"
#include "microtl.h"
int main(void) { printf("%u\\n", (unsigned)MT_TRAIN_WORK_BYTES); return 0; }
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")
@pytest.mark.parametrize("momentum,batch,restore,hidden,samples", [
    (0.9, 8, True, 0, 90), (0.9, 8, False, 8, 91), (0.0, 1, False, 8, 90), (0.0, 1, True, 0, 33),
    (0.0, 4, False, 0, 90), (0.9, 1, False, 8, 2)])
def test_work_region_mirror_equals_the_c_macro(tmp_path, momentum, batch, restore, hidden, samples):
    """The cost model's train_work_bytes is MT_TRAIN_WORK_BYTES of microtl.h for the same configuration: update
    buffer only with momentum or batch > 1, best copy only with restore_best, activations, shuffle order."""
    c = Configuration(task="digits", model="digits_cnn", cut="fc1", hidden=hidden, samples=samples, epochs=10,
                      batch=batch, momentum=momentum, restore_best=restore)
    w = workload_from_config(c, 3)
    header = HEADER.format(n=samples, ntr=w.train_samples, nval=w.val_samples, batch=batch, hidden=hidden)
    header += f"#define DSE_HAS_MOMENTUM {int(momentum > 0)}\n#define DSE_RESTORE_BEST {int(restore)}\n"
    (tmp_path / "dse_model.h").write_text(header)
    (tmp_path / "work.c").write_text(WORK_C)
    exe = tmp_path / "work"
    subprocess.run(["cc", f"-I{tmp_path}", f"-I{C_DIR}", str(tmp_path / "work.c"), "-o", str(exe)], check=True)
    got = int(subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout)
    assert got == fm.train_work_bytes(w)
    params = w.head_params
    expected_floats = params * ((momentum > 0 or batch > 1) + (restore and w.val_samples > 0))
    assert fm.ram_terms(w)["update_buffer"] + fm.ram_terms(w)["best_weights"] == 4 * expected_floats
