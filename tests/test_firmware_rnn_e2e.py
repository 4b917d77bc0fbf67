"""har_rnn through the firmware: a har3b configuration cut at an int8 recurrent layer generates (lstm/gru calls,
static state buffers), builds for the host and for the Cortex-M4, and its collected features on the host board
equal the Python integer reference's byte for byte. Data: a tiny generated UCI HAR directory (real file layout)."""
import shutil

import numpy as np
import pytest

from firmware.boards import get_board
from firmware.build import build
from firmware.codegen import generate
from models.config import Configuration
from models.datasets import uci_har

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


@pytest.mark.parametrize("cut", ["lstm1", "gru3"])
def test_har_rnn_host_features_identical(har_data, tmp_path, cut):
    data_path, cache = har_data
    config = Configuration("har3b", "har_rnn", cut, hidden=0, samples=12, epochs=3, batch=4, lr=0.01)
    gen = generate(config, tmp_path / "gen", repeat=0, seed=1, data_path=data_path, cache_dir=cache,
                   test_limit=4, dump_features=True)
    source = (tmp_path / "gen" / "dse_model.c").read_text()
    assert "nn_lstm_q7(" in source and ("nn_gru_q7(" in source) == (cut == "gru3")
    assert "static q15_t lstm1_cell[32];" in source
    result = get_board("host").run(build(gen, "host", tmp_path / "build"), timeout_s=120)
    report = result.report()
    assert result.exit_code == 0 and report.status == 0
    assert report.feature_matrix().tobytes() == gen.expected_features.tobytes()
    assert report.features_fnv1a == gen.expected_fnv1a
    assert len(np.unique(gen.expected_features)) > 10  # the features carry information, not a constant


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
def test_har_rnn_builds_for_cortex_m4(har_data, tmp_path):
    data_path, cache = har_data
    config = Configuration("har3b", "har_rnn", "gru3", hidden=32, samples=12, epochs=3, batch=4, lr=0.01)
    gen = generate(config, tmp_path / "gen", data_path=data_path, cache_dir=cache, test_limit=4)
    binary = build(gen, "cortex-m4", tmp_path / "m4")
    assert binary.flash_bytes > 0 and binary.static_ram_bytes > 0


def test_int16_cut_is_refused_with_reason(har_data, tmp_path):
    data_path, cache = har_data
    config = Configuration("har3b", "har_rnn", "gru1", hidden=0, samples=12, epochs=3, batch=4, lr=0.01)
    with pytest.raises(NotImplementedError, match="int16 features"):
        generate(config, tmp_path / "gen", data_path=data_path, cache_dir=cache, test_limit=4)
