"""har_rnn through the firmware: a har3b configuration cut at any recurrent layer - int8 (lstm1, gru3) or int16
(gru1, gru2: the sample store then holds int16) - generates (lstm/gru calls, static state buffers), builds for the
host and for the Cortex-M4, and its collected features on the host board equal the Python integer reference's byte
for byte; on qemu-an386 the whole run (collection, training, evaluation) reproduces the simulated draw, and
`dse validate` checks a har_rnn study trial there. Data: a tiny generated UCI HAR directory (real file layout)."""
import hashlib
import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from conftest import model_cache_at
from dse.cli import main
from dse.search.optimize import run_study
from dse.study.file import load_study_file
from firmware.boards import get_board
from firmware.build import build
from firmware.codegen import generate
from firmware.records import read_record
from vocabulary.configuration import Configuration
from models.datasets import uci_har
from cost_models.paper.memory import ram_bytes
from cost_models.workload import workload_from_config
from models import feature_cache as fc
from models.features import dequantize, extract
from models.simulate import cut_features, prepare, simulate
from models.zoo import get_model
from qemu_fw_util import require_tools


pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")


def _har_dir(root, per_class: int = 8):
    """'UCI HAR Dataset/' with per_class windows per activity and part: sine mixtures whose frequency depends on
    the activity, so pretraining learns something and the recurrent states move."""
    rng = np.random.default_rng(5)
    base = root / "UCI HAR Dataset"
    t = np.arange(128) / 50.0
    for part in ("train", "test"):
        labels = np.repeat(np.arange(1, 7), per_class)
        rng.shuffle(labels)
        (base / part / "Inertial Signals").mkdir(parents=True)
        for k, signal in enumerate(uci_har.SIGNALS):
            f = (0.5 * labels[:, None] * rng.uniform(0.9, 1.1, (len(labels), 1)))
            values = np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3, (len(labels), 1))) * (k + 1)
            values += 0.2 * rng.standard_normal(values.shape) + 0.1 * k
            (base / part / "Inertial Signals" / f"{signal}_{part}.txt").write_text(
                "\n".join("".join(f" {v: .7e}" for v in row) for row in values) + "\n")
        (base / part / f"y_{part}.txt").write_text("".join(f"{v}\n" for v in labels))
    return base


@pytest.fixture(scope="module")
def har_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("har_rnn")
    return _har_dir(root), root / "cache"


@pytest.mark.parametrize("cut", ["lstm1", "gru1", "gru2", "gru3"])
def test_har_rnn_host_features_identical(har_data, tmp_path, cut):
    data_path, cache = har_data
    config = Configuration("har3b", "har_rnn", cut, hidden=0, samples=12, epochs=3, batch=4, lr=0.01)
    gen = generate(config, tmp_path / "gen", repeat=0, seed=1, data_path=data_path, cache_dir=cache,
                   test_limit=4, dump_features=True)
    source = (tmp_path / "gen" / "dse_model.c").read_text()
    assert "nn_lstm_q7(" in source and ("nn_gru_q7(" in source) == (cut != "lstm1")
    assert "static q15_t lstm1_cell[32];" in source
    layer = get_model("har_rnn").layer(cut)
    ctype = f"int{layer.out_bits}_t"
    assert f"void dse_frozen_forward(const int8_t *input, {ctype} *feature)" in source
    header = (tmp_path / "gen" / "dse_model.h").read_text()
    assert f"#define DSE_FEATURE {layer.elements}u" in header and f"#define DSE_FEATURE_BYTES {layer.bytes}u" in header
    assert f"#define DSE_FEATURE_BITS {layer.out_bits} " in header
    assert gen.expected_features.dtype == np.dtype(f"<i{layer.out_bits // 8}")
    assert gen.expected_features.shape == (12, layer.elements) and gen.feature_bytes == layer.bytes
    result = get_board("host").run(build(gen, "host", tmp_path / "build"), timeout_s=120)
    report = result.report()
    assert result.exit_code == 0 and report.status == 0
    assert report.feature_bytes == layer.bytes  # hello and the dump count bytes (2 per int16 element)
    assert report.feature_matrix().tobytes() == gen.expected_features.tobytes()
    assert report.features_fnv1a == gen.expected_fnv1a
    assert len(np.unique(gen.expected_features)) > 10  # the features carry information, not a constant
    if layer.out_bits == 16:  # values beyond int8: a store of int8 would have wrapped them
        assert np.abs(gen.expected_features.astype(np.int32)).max() > 127
    # the head the board trained on this store is the simulated one: same epochs and test predictions
    assert (report.epochs_run, report.best_epoch, report.correct) == \
        (gen.simulated_epochs_run, gen.simulated_best_epoch, gen.simulated_correct)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
def test_har_rnn_builds_for_cortex_m4(har_data, tmp_path):
    data_path, cache = har_data
    config = Configuration("har3b", "har_rnn", "gru3", hidden=32, samples=12, epochs=3, batch=4, lr=0.01)
    gen = generate(config, tmp_path / "gen", data_path=data_path, cache_dir=cache, test_limit=4)
    binary = build(gen, "cortex-m4", tmp_path / "m4")
    assert binary.flash_bytes > 0 and binary.static_ram_bytes > 0


def test_int16_store_dequantizes_exactly(har_data):
    """int16 x 2^-f is a float32 exactly (16 significant bits, f <= 15): the store's dequantization loses
    nothing, so the device and Python train on the same values."""
    data_path, cache = har_data
    prep = prepare("har3b", "har_rnn", "q7", data_path, cache, cuts=("gru1",))
    config = Configuration("har3b", "har_rnn", "gru1", hidden=0, samples=12, epochs=3, batch=4, lr=0.01)
    _, pool, _, _ = cut_features(config, data_path, cache)
    assert pool.q.dtype == np.int16 and pool.frac_bits == prep.qmodel.layer("gru1").f_out
    assert 0 <= pool.frac_bits <= 15
    x32 = dequantize(pool)
    assert x32.dtype == np.float32
    assert np.array_equal(x32.astype(np.float64), pool.q.astype(np.float64) * 2.0 ** -pool.frac_bits)


def test_int16_features_python_side(har_data):
    """At gru1 the Python side agrees on 2 B per element: the disk cache keeps int16 (format 1 wrapped them to
    int8), simulate reports 5,504 B per feature, and the cost models' workload and sample store count the same."""
    data_path, cache = har_data
    prep = prepare("har3b", "har_rnn", "q7", data_path, cache, cuts=("gru1",))
    weights = fc.weights_hash(prep.pretrained.network)
    pool = fc.cached_features(prep.qmodel, weights, prep.data, "target_pool", "gru1", cache)
    assert isinstance(pool.q, np.memmap) and pool.q.dtype == np.int16 and pool.q.shape[1] == 43 * 64
    np.testing.assert_array_equal(pool.q, extract(prep.qmodel, prep.data.target_pool.x, "gru1").q)
    # a stale file of the wrong width with a self-consistent sidecar is not served: rebuilt as int16
    npy, meta = fc.paths(cache, fc.cache_key(fc.key_inputs(weights, prep.qmodel, "gru1", prep.data.content_hash,
                                                             "target_pool")))
    wrapped = np.ascontiguousarray(pool.q, dtype=np.int8)
    np.save(npy.with_suffix(".stale.npy"), wrapped)
    os.replace(npy.with_suffix(".stale.npy"), npy)  # a new file: the mapped one stays valid for its readers
    sidecar = json.loads(meta.read_text())
    meta.write_text(json.dumps({**sidecar, "sha256": hashlib.sha256(wrapped.tobytes()).hexdigest()}))
    again = fc.cached_features(prep.qmodel, weights, prep.data, "target_pool", "gru1", cache)
    assert again.q.dtype == np.int16 and np.array_equal(again.q, pool.q)

    config = Configuration("har3b", "har_rnn", "gru1", hidden=0, samples=12, epochs=2, batch=4, lr=0.01)
    assert simulate(config, 1, 1, data_path, cache).feature_bytes == 5504 == get_model("har_rnn").layer("gru1").bytes
    w = workload_from_config(config)
    assert (w.feature_elements, w.feature_bytes) == (2752, 5504)
    assert ram_bytes(w)["sample_store"] == 12 * 5504


# --- qemu-an386: the whole run (collection through the int8/int16 LSTM/GRU kernels, training, evaluation) ---------

QEMU_SAMPLES, QEMU_TEST = 12, 6


@pytest.fixture(scope="module", params=["gru1", "gru3"])
def qemu_run(request, har_data, tmp_path_factory):
    """One har_rnn firmware run on qemu-an386 per cut: gru1 (int16 store, 5,504 B per feature) and gru3 (int8)."""
    require_tools()
    data_path, cache = har_data
    cut = request.param
    d = tmp_path_factory.mktemp(f"qemu-{cut}")
    config = Configuration("har3b", "har_rnn", cut, hidden=0, samples=QEMU_SAMPLES, epochs=3, batch=4, lr=0.01)
    gen = generate(config, d / "gen", repeat=0, seed=1, data_path=data_path, cache_dir=cache, test_limit=QEMU_TEST,
                   dump_features=True)
    binary = build(gen, "cortex-m4", d / "m4", platform="qemu")
    board = get_board("qemu-an386")
    t = time.monotonic()
    result = board.run(binary, timeout_s=board.timeout_for(2e9))
    wall = time.monotonic() - t
    print(f"har_rnn cut {cut} on qemu-an386: {wall:.2f} s wall, instructions {result.instructions}, "
          f"{result.instructions['collection'] / QEMU_SAMPLES:,.0f} per collected window; flash "
          f"{binary.flash_bytes} B, static RAM {binary.static_ram_bytes} B")
    return cut, gen, binary, result


def test_har_rnn_qemu_features_and_accuracy(qemu_run):
    cut, gen, _, result = qemu_run
    report = result.report()
    assert result.exit_code == 0 and report.status == 0
    assert report.feature_matrix().tobytes() == gen.expected_features.tobytes()  # byte for byte, int16 included
    assert report.features_fnv1a == gen.expected_fnv1a
    assert (report.correct, report.test_count) == (gen.simulated_correct, QEMU_TEST)  # the simulated draw's accuracy
    assert (report.epochs_run, report.best_epoch) == (gen.simulated_epochs_run, gen.simulated_best_epoch)
    assert set(result.instructions) == {"collection", "training", "evaluation"}
    # measured: 6.5 M (gru1) and 9.2 M (gru3) instructions per 128x9 window; the collection dominates
    per_window = result.instructions["collection"] / QEMU_SAMPLES
    assert 1e6 < per_window < 5e7
    assert result.instructions["evaluation"] > result.instructions["training"] or cut == "gru1"


def _symbol_size(elf, name: str) -> int:
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == name:
            return int(parts[1], 16)
    raise AssertionError(f"{name} not in {elf}")


def test_har_rnn_qemu_store_memory(qemu_run):
    """The store's static RAM is N x F x element bytes (int16 at gru1), read from the ELF; the whole firmware fits
    the nRF52840's 256 KB RAM."""
    cut, gen, binary, result = qemu_run
    layer = get_model("har_rnn").layer(cut)
    assert _symbol_size(binary.path, "mt_store") == QEMU_SAMPLES * layer.bytes == gen.n_samples * gen.feature_bytes
    assert binary.static_ram_bytes > QEMU_SAMPLES * layer.bytes
    assert binary.static_ram_bytes + result.report().stack_bytes <= 256 * 1024


HAR_STUDY = """
[study]
name = "har_gru1"
trials = 1
repeats = 1
seed = 0
sampler = "random"

[task]
name = "har3b"
data = "{data}"

[model]
name = "har_rnn"

[board]
name = "nrf52840dk"

[space]
cut = "gru1"
hidden = 0
samples = 12
epochs = 3
batch = 4
lr = 0.01

[objectives]
accuracy = "maximize"
ram = "minimize"
"""


def test_dse_validate_har_rnn_trial_on_qemu(har_data, tmp_path, capsys):
    """`dse validate` on a har_rnn study trial cut at the int16 gru1: the record is ok, the features match the
    integer reference and the board's accuracy equals the study's simulation of the same draw."""
    require_tools()
    data_path, cache = har_data
    (tmp_path / "study.toml").write_text(HAR_STUDY.format(data=data_path))
    with model_cache_at(cache):
        run_study(load_study_file(tmp_path / "study.toml"), tmp_path / "run", progress=False)
        code = main(["validate", str(tmp_path / "run"), "--trial", "0", "--board", "qemu-an386"])
    out, err = capsys.readouterr()
    assert code == 0, err
    record = read_record(tmp_path / "run" / "validations" / "trial-0-qemu-an386.json")
    m = record.measured
    assert record.status == "ok" and record.configuration["cut"] == "gru1"
    assert m.features_match is True and m.features_fnv == m.features_expected_fnv
    assert m.accuracy == record.predicted.accuracy and record.errors["accuracy_pp"] == 0.0
    assert m.epochs_run == record.predicted.epochs_run
    assert m.peak_ram_bytes <= 256 * 1024 and all(v > 0 for v in m.instructions.values())
    assert not any("differ" in note for note in record.notes), record.notes
