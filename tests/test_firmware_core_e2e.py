"""Firmware end to end on the host board (generate -> build -> run -> parse) against the Python simulation of the
same repeat; codegen determinism; Cortex-M4 builds, ELF sizes and the does-not-fit error."""
import shutil

import numpy as np
import pytest

from firmware.boards import get_board
from firmware.build import Binary, DoesNotFit, build, elf_sizes
from firmware.codegen import c_float, generate
from vocabulary.configuration import Configuration
from models.simulate import simulate

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")

CONFIGS = {
    "pool2-h16": Configuration("digits", "digits_cnn", "pool2", hidden=16, samples=100, epochs=20, batch=8, lr=0.02),
    "conv1-h0": Configuration("digits", "digits_cnn", "conv1", hidden=0, samples=60, epochs=15, batch=4, lr=0.01),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def host_run(request, tmp_path_factory):
    config = CONFIGS[request.param]
    d = tmp_path_factory.mktemp(request.param)
    gen = generate(config, d / "gen", repeat=1, seed=3, dump_features=True)
    binary = build(gen, "host", d / "build")
    result = get_board("host").run(binary, timeout_s=60)
    return config, gen, binary, result


def test_host_features_identical(host_run):
    config, gen, _, result = host_run
    report = result.report()
    assert result.exit_code == 0 and report.status == 0
    assert (report.samples, report.train, report.val) == (config.samples, config.train_samples, config.val_samples)
    assert report.features_fnv1a == gen.expected_fnv1a
    assert report.feature_matrix().tobytes() == gen.expected_features.tobytes()


def test_host_training_matches_simulation(host_run):
    config, gen, _, result = host_run
    report = result.report()
    # the same draw, head seed, init and batch order: only float summation order (numpy BLAS vs C loops) differs
    assert report.test_count == gen.n_test > 0
    diff = abs(report.accuracy - gen.simulated_accuracy)
    assert diff <= 0.03, f"firmware {report.accuracy:.4f} vs simulated {gen.simulated_accuracy:.4f}"
    assert report.epochs_run == gen.simulated_epochs_run
    assert report.best_epoch == gen.simulated_best_epoch
    assert report.host_ns and set(report.host_ns) == {"collection", "training", "evaluation"}
    assert report.cycles is None and report.stack_bytes is None  # the host has neither


def test_generate_is_simulate_repeat(host_run):
    """The generated run is repeat `repeat` of simulate(config, repeats, seed)."""
    config, gen, _, _ = host_run
    stats = simulate(config, repeats=gen.repeat + 1, seed=gen.seed)
    assert stats.per_repeat[gen.repeat] == pytest.approx(gen.simulated_accuracy, abs=1e-12)
    assert stats.epochs_per_repeat[gen.repeat] == gen.simulated_epochs_run


def test_codegen_deterministic(tmp_path):
    config = CONFIGS["pool2-h16"]
    a = generate(config, tmp_path / "a", repeat=2, seed=5, test_limit=20)
    b = generate(config, tmp_path / "b", repeat=2, seed=5, test_limit=20)
    assert a.sha256 == b.sha256
    for fa, fb in zip(a.files, b.files):
        assert fa.read_bytes() == fb.read_bytes()
    assert (tmp_path / "a" / "dse_manifest.json").read_bytes() == (tmp_path / "b" / "dse_manifest.json").read_bytes()
    c = generate(config, tmp_path / "c", repeat=3, seed=5, test_limit=20)
    assert c.sha256 != a.sha256 and c.head_seed != a.head_seed
    header = a.files[0].read_text()
    assert "#define DSE_LR 0x1.47ae14p-6f" in header  # float32(0.02), exact
    assert "DSE_N_TEST 20u" in header
    source = a.files[1].read_text()
    assert "fc1_w" not in source and "nn_fc_q7(" not in source  # nothing past the cut


def test_c_float_exact():
    for v in (0.01, 0.9, 1e-4, 1.0, 0.125, 3.0e-7):
        text = c_float(v)
        assert text.endswith("f")
        assert np.float32(float.fromhex(text[:-1])) == np.float32(v)
    assert c_float(0.5) == "0x1p-1f" and c_float(0.0) == "0x0p+0f"


@needs_arm
def test_cortex_m4_build_sizes(tmp_path):
    config = Configuration("digits", "digits_cnn", "conv2", hidden=8, samples=50, epochs=10)
    gen = generate(config, tmp_path / "gen", test_limit=30)
    binary = build(gen, "cortex-m4", tmp_path / "m4")
    assert isinstance(binary, Binary) and binary.target == "cortex-m4" and binary.platform == "qemu"
    assert binary.path.is_file() and "arm-none-eabi-gcc" in binary.toolchain_version
    assert (binary.flash_bytes, binary.static_ram_bytes) == elf_sizes(binary.path)
    # RAM: store 50 x 512 + head (8 x 512 + 8 + 3 x 8 + 3 floats) x 3 (weights; in the work region the update buffer
    # and the best copy) and no float batch buffer (samples one at a time, dequantized on the fly)
    head = (8 * 512 + 8 + 3 * 8 + 3) * 4
    assert 50 * 512 + 3 * head <= binary.static_ram_bytes < 50 * 512 + 3 * head + 4096
    assert 80 * 64 < binary.flash_bytes < 64 * 1024
    # growing the store grows static RAM by at least its bytes (plus the 2-byte shuffle index per sample)
    bigger = build(generate(config.__class__(**{**config.to_dict(), "samples": 60}), tmp_path / "gen2",
                            test_limit=30), "cortex-m4", tmp_path / "m4b")
    assert bigger.static_ram_bytes - binary.static_ram_bytes >= 10 * 512


def _symbol_size(elf, name: str) -> int:
    from elftools.elf.elffile import ELFFile

    with open(elf, "rb") as fh:
        symbols = [s for s in ELFFile(fh).get_section_by_name(".symtab").iter_symbols() if s.name == name]
    assert len(symbols) == 1, name
    return int(symbols[0]["st_size"])


@needs_arm
@pytest.mark.parametrize("cut,lean", [("conv1", False), ("pool2", False), ("fc1", False), ("conv2", True)])
def test_frozen_arena_is_what_the_ram_model_prices(tmp_path, cut, lean):
    """The generated firmware's one region (the frozen arena of the liveness plan, models/arena.py, shared with
    mt_train's work region) has exactly the bytes the RAM model prices for the two, 4-byte aligned in RAM."""
    from elftools.elf.elffile import ELFFile

    from cost_models.microtl_dse import model as fm
    from models.arena import arena_bytes
    from cost_models.workload import workload_from_config

    # lean: no update buffer, no best copy, no hidden layer - the frozen arena is the larger part of the region
    config = Configuration("digits", "digits_cnn", cut, hidden=0 if lean else 8, samples=20, epochs=2,
                           batch=1 if lean else 8, momentum=0.0 if lean else 0.9, restore_best=not lean)
    gen = generate(config, tmp_path / "gen", test_limit=5)
    binary = build(gen, "cortex-m4", tmp_path / "m4")
    w = workload_from_config(config)
    assert (fm.region_bytes(w) > fm.train_work_bytes(w)) == lean
    raw = fm.ram_terms(w)
    priced = raw["frozen_arena"] + sum(raw[t] for t in fm.WORK_TERMS)
    assert f"#define DSE_ARENA_BYTES {arena_bytes(w.layers)}u" in gen.files[0].read_text()
    assert _symbol_size(binary.path, "dse_arena") == priced == fm.region_bytes(w) > 0
    with open(binary.path, "rb") as fh:
        arena = next(s for s in ELFFile(fh).get_section_by_name(".symtab").iter_symbols() if s.name == "dse_arena")
        assert arena["st_value"] % 4 == 0
    assert "dse_act0" not in gen.files[1].read_text()  # no ping-pong buffers any more
    assert "train_work" not in (gen.files[1].read_text())  # the trainer has no region of its own


@needs_arm
def test_cortex_m4_does_not_fit(tmp_path):
    # cut conv1 (576-byte features) with a 128-unit hidden layer: ~74k head parameters x 3 float copies > 256 KB
    config = Configuration("digits", "digits_cnn", "conv1", hidden=128, samples=30, epochs=1)
    gen = generate(config, tmp_path / "gen", test_limit=5)
    with pytest.raises(DoesNotFit) as info:
        build(gen, "cortex-m4", tmp_path / "m4")
    message = str(info.value)
    assert message.startswith("does not fit: RAM over by ") and message.endswith(" bytes")
    assert "\n" not in message
    over = int(message.split()[-2])
    params = 128 * 576 + 128 + 3 * 128 + 3
    assert over > 3 * 4 * params - 256 * 1024


def _qemu_available():
    try:
        return get_board("qemu-an386").available()[0] and shutil.which("arm-none-eabi-gcc") is not None
    except Exception:
        return False


@pytest.mark.skipif(not _qemu_available(), reason="qemu-an386 board not available")
def test_host_and_cortex_m4_bit_identical(tmp_path):
    """The trainer uses only IEEE + - * / sqrt and its own expf/logf: the emulated Cortex-M4 gives the same
    validation-loss bits every epoch as the host, hence the same epochs and test result."""
    config = Configuration("digits", "digits_cnn", "pool2", hidden=16, samples=80, epochs=8, lr=0.05)
    gen = generate(config, tmp_path / "gen", repeat=0, seed=1, test_limit=40)
    trace = ["DSE_TRACE_EPOCHS"]
    host = get_board("host").run(build(gen, "host", tmp_path / "h", trace))
    m4 = get_board("qemu-an386").run(build(gen, "cortex-m4", tmp_path / "m", trace), 120)
    keep = ("features", "epoch", "train", "result")
    assert [o for o in m4.lines if o["event"] in keep] == [o for o in host.lines if o["event"] in keep]
    assert sum(o["event"] == "epoch" for o in host.lines) == host.report().epochs_run
