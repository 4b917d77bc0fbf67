"""`dse validate` of a small streaming study on qemu-an386 (issue 14): the board's accuracy equals the same draw
replayed in the firmware's arithmetic, the retired instructions of each phase are within +-3% of the qemu-an386
calibration's prediction, and the deployed image's peak RAM within 1% of the qemu-an386 RAM model's.
(benchmarks/streaming_validation.py measures the same on the streaming_vs_stored study's top picks.)"""
from __future__ import annotations

import json

import pytest

from cost_models.predict import predict
from dse.cli import main
from dse.study.folder import StudyFolder
from dse.commands.validation import load_trial
from conftest import model_cache_at

STUDY = """
[study]
name = "vstream"
trials = 2
repeats = 2
seed = 0
sampler = "random"

[task]
name = "digits"

[model]
name = "digits_cnn"

[board]
name = "nrf52840dk"

[space]
mode = "streaming"
replay = [4, 8]
cut = ["pool2", "fc1"]
hidden = [0, 8]
samples = 30
lr = { low = 0.01, high = 0.05 }

[objectives]
accuracy = "maximize"
ram = "minimize"
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from qemu_fw_util import require_tools

    require_tools()
    root = tmp_path_factory.mktemp("vstream")
    (root / "vstream.toml").write_text(STUDY)
    with model_cache_at(root / "cache"):
        assert main(["run", str(root / "vstream.toml"), "--out", str(root / "out"), "--quiet"]) == 0
        yield root / "out"


def test_streaming_trial_on_qemu_matches_replay_and_predictions(study, capsys):
    capsys.readouterr()
    assert main(["validate", str(study), "--trial", "0", "--board", "qemu-an386", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    assert record["status"] == "ok" and record["configuration"]["mode"] == "streaming"
    measured, predicted = record["measured"], record["predicted"]
    assert measured["accuracy"] == predicted["replay_accuracy"]  # bit-exact: the board equals the replay

    info = load_trial(study, 0, StudyFolder(study).load())
    on_board = predict(info.config, "qemu-an386", classes=info.spec.task.classes,
                       test_inputs=int(info.accuracy["test_size"]))
    assert measured["deployed_peak_ram_bytes"] == pytest.approx(on_board.ram_total, rel=0.01)
    for phase in ("collection", "training", "evaluation"):
        assert predicted["instructions"][phase] == pytest.approx(measured["instructions"][phase], rel=0.03), phase

    assert main(["validate", str(study), "--trial", "0", "--board", "qemu-an386"]) == 0
    assert "streaming, replay" in capsys.readouterr().out  # the table's title names the mode
