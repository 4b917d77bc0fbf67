"""Disk cache of int8 features (models.feature_cache): reuse across processes, keys, corruption, memory mapping."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import models.feature_cache as fc
from models import simulate as sim
from models.features import extract
from models.simulate import prepare

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    # a cache directory of its own (pretraining digits_cnn takes a few seconds), features computed once here
    root = tmp_path_factory.mktemp("feature-cache")
    prep = prepare("digits", "digits_cnn", cache_dir=root, cuts=("pool2",))
    return root, prep


def _key(root):
    return sim._key("digits", "digits_cnn", "q7", None, root, None, None)


def _no_extract(*args, **kwargs):
    raise AssertionError("features were recomputed instead of loaded from the disk cache")


def test_files_and_sidecar(cache):
    root, prep = cache
    files = sorted((root / "features").glob("*.npy"))
    assert len(files) == 2  # target pool and target test at pool2
    for npy in files:
        meta = json.loads(npy.with_suffix(".json").read_text())
        assert meta["frac_bits"] == prep.qmodel.frac_bits("pool2") and meta["zero_point"] == 0
        assert meta["key"]["cut"] == "pool2" and meta["key"]["scheme"] == "q7"
        assert meta["key"]["data"] == prep.data.content_hash and meta["key"]["split"] in ("target_pool", "target_test")
        assert npy.stem == fc.cache_key(meta["key"])
    assert not list((root / "features").glob("*.tmp"))


def test_cold_in_process_cache_loads_from_disk_memory_mapped(cache, monkeypatch):
    root, prep = cache
    pool_before, x_test_before, y_test = sim._features(_key(root), "pool2")
    sim.clear_caches()
    monkeypatch.setattr(fc, "extract", _no_extract)
    pool, x_test, y = sim._features(_key(root), "pool2")
    assert isinstance(pool.q, np.memmap) and pool.q.dtype == np.int8 and not pool.q.flags.writeable
    assert Path(pool.q.filename).parent == root / "features"
    np.testing.assert_array_equal(pool.q, extract(prep.qmodel, prep.data.target_pool.x, "pool2").q)
    np.testing.assert_array_equal(pool.q, pool_before.q)
    np.testing.assert_array_equal(x_test, x_test_before)
    assert pool.frac_bits == pool_before.frac_bits and pool.zero_point == pool_before.zero_point
    assert np.array_equal(y, y_test)


def test_second_process_loads_from_disk(cache):
    root, _ = cache
    script = (
        "import numpy as np, models.feature_cache as fc\n"
        "from models import simulate as sim\n"
        "def boom(*a, **k): raise SystemExit('recomputed')\n"
        "fc.extract = boom\n"
        f"pool, _, _ = sim._features(sim._key('digits', 'digits_cnn', 'q7', None, {str(root)!r}, None, None), 'pool2')\n"
        "assert isinstance(pool.q, np.memmap)\n"
        "print('ok', pool.q.shape)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.startswith("ok")


def test_key_changes_with_every_input(cache):
    _, prep = cache
    qmodel, data = prep.qmodel, prep.data
    weights = fc.weights_hash(prep.pretrained.network)
    base = fc.cache_key(fc.key_inputs(weights, qmodel, "pool2", data.content_hash, "target_pool"))
    assert base == fc.cache_key(fc.key_inputs(fc.weights_hash(prep.pretrained.network), qmodel, "pool2",
                                              data.content_hash, "target_pool"))  # deterministic
    layers = list(qmodel.layers)
    conv2 = qmodel.layer("conv2")
    i = layers.index(conv2)
    w = conv2.weights.copy()
    w.flat[0] ^= 1
    changed = {
        "cut": fc.key_inputs(weights, qmodel, "conv2", data.content_hash, "target_pool"),
        "split": fc.key_inputs(weights, qmodel, "pool2", data.content_hash, "target_test"),
        "data": fc.key_inputs(weights, qmodel, "pool2", "0" * 64, "target_pool"),
        "weights": fc.key_inputs("f" * 64, qmodel, "pool2", data.content_hash, "target_pool"),
        "scheme": fc.key_inputs(weights, dataclasses.replace(qmodel, scheme="s8"), "pool2", data.content_hash,
                                "target_pool"),
        "int8 weight": fc.key_inputs(weights, dataclasses.replace(
            qmodel, layers=tuple(layers[:i] + [dataclasses.replace(conv2, weights=w)] + layers[i + 1:])),
            "pool2", data.content_hash, "target_pool"),
        "shift": fc.key_inputs(weights, dataclasses.replace(
            qmodel, layers=tuple(layers[:i] + [dataclasses.replace(conv2, f_out=conv2.f_out - 1)] + layers[i + 1:])),
            "pool2", data.content_hash, "target_pool"),
        "input frac bits": fc.key_inputs(weights, dataclasses.replace(qmodel, f_input=qmodel.f_input - 1), "pool2",
                                         data.content_hash, "target_pool"),
    }
    keys = {name: fc.cache_key(inputs) for name, inputs in changed.items()}
    for name, key in keys.items():
        assert key != base, f"the key does not change with the {name}"
    assert len(set(keys.values())) == len(keys)
    # a retrained network has other weights: another hash
    net = prep.pretrained.network
    state = {k: v.clone() for k, v in net.state_dict().items()}
    try:
        first = next(iter(net.state_dict()))
        net.state_dict()[first].view(-1)[0] += 1.0
        assert fc.weights_hash(net) != weights
    finally:
        net.load_state_dict(state)
    assert fc.weights_hash(net) == weights


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "no sidecar", "bad sidecar"])
def test_corrupted_file_is_detected_and_rebuilt(cache, damage, monkeypatch):
    root, prep = cache
    weights = fc.weights_hash(prep.pretrained.network)
    key = fc.cache_key(fc.key_inputs(weights, prep.qmodel, "pool2", prep.data.content_hash, "target_pool"))
    npy, meta = fc.paths(root, key)
    good = np.load(npy)
    raw = npy.read_bytes()
    if damage == "flip":
        npy.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0x40]))
    elif damage == "truncate":
        npy.write_bytes(raw[:len(raw) // 2])
    elif damage == "garbage":
        npy.write_bytes(b"not an npy file")
    elif damage == "no sidecar":
        meta.unlink()
    else:
        meta.write_text("{")
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return extract(*args, **kwargs)

    monkeypatch.setattr(fc, "extract", counting)
    features = fc.cached_features(prep.qmodel, weights, prep.data, "target_pool", "pool2", root)
    assert calls == [1]  # detected: recomputed
    np.testing.assert_array_equal(features.q, good)
    assert isinstance(features.q, np.memmap)
    np.testing.assert_array_equal(np.load(npy), good)  # rewritten
    json.loads(meta.read_text())
    calls.clear()
    fc.cached_features(prep.qmodel, weights, prep.data, "target_pool", "pool2", root)
    assert calls == []  # healthy again: loaded


def test_simulate_unchanged_by_cache(cache, monkeypatch):
    root, _ = cache
    from vocabulary.configuration import Configuration
    config = Configuration(task="digits", model="digits_cnn", cut="pool2", samples=30, hidden=16, epochs=3)
    first = sim.simulate(config, repeats=3, seed=1, cache_dir=root)
    sim.clear_caches()
    monkeypatch.setattr(fc, "extract", _no_extract)
    second = sim.simulate(config, repeats=3, seed=1, cache_dir=root)
    assert first.per_repeat == second.per_repeat and first.epochs_per_repeat == second.epochs_per_repeat
