"""Streaming as a design axis in dse: the conditional space (no trial spent on a combination that collapses onto
another configuration), the grid of distinct configurations, `dse predict --mode`, and the mode in the reports.

Accuracy comes from a fast stand-in for the simulation (the search plumbing is under test, not the models);
costs and lifetimes are the real cost models' predictions."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest

from cost_models.lifetime import lifetime_for
from cost_models.predict import predict
from dse.cli import main
from dse.search.evaluate import Evaluation, lifetime_of, price
from dse.reports.modes import ram_comparison, sample_latency_s
from dse.search.optimize import run_study
from dse.study.space import resolve
from dse.study.file import parse_study
from vocabulary.configuration import STREAMING_FIXED, Configuration

SPACE = """
[study]
name = "streamy"
trials = 40
repeats = 2
seed = 0
sampler = "{sampler}"

[task]
name = "digits"

[model]
name = "digits_cnn"

[board]
name = "nrf52840dk"

[space]
mode = ["stored", "streaming"]
replay = [0, 8, 32]
cut = ["conv2", "pool2"]
hidden = [0, 8]
samples = [20, 40]
epochs = [5, 10]
batch = [4, 8]
lr = 0.02

[objectives]
accuracy = "maximize"
ram = "minimize"
lifetime = "maximize"

[deployment]
battery_mah = 225
battery_v = 3.0
inferences_per_hour = 60
adaptations_per_month = 4

[constraints]
ram_kb = 64
"""
# stored: cut 2 x hidden 2 x samples 2 x epochs 2 x batch 2 = 32; streaming: cut 2 x hidden 2 x (samples 20: replay
# 0, 8, 32 -> 20; samples 40: 0, 8, 32) = 24. A Cartesian grid would have 2 x 3 x 2 x 2 x 2 x 2 x 2 = 192 points.
DISTINCT = 56


def spec_of(tmp_path: Path, sampler: str = "tpe", text: str = SPACE, check: bool = False):
    path = tmp_path / "streamy.toml"
    path.write_text(text.format(sampler=sampler))
    return parse_study(path.read_text(), path, check_environment=check)


class FakeEvaluator:
    """Accuracy from a formula of the configuration (deterministic, instant); the real cost models' prediction,
    with streaming's RAM halved so that streaming picks reach the front whatever the cost models say today."""

    def __init__(self, spec) -> None:
        self.spec, self.calls = spec, []

    def prepare(self, progress=None) -> None:
        pass

    def __call__(self, config: Configuration) -> Evaluation:
        self.calls.append(config)
        mean = min(0.99, 0.5 + config.samples / 100 + config.hidden / 100 + (0.05 if config.streaming else 0.0)
                   + config.replay / 1000)
        stats = SimpleNamespace(mean=mean, std=0.01, per_repeat=[mean, mean], epochs_mean=float(config.epochs),
                                epochs_per_repeat=[config.epochs] * 2, feature_bytes=None, test_size=100)
        prediction = price(config, self.spec.board, float(config.epochs), firmware=self.spec.firmware)
        if config.streaming:
            prediction = replace(prediction, ram_total=prediction.ram_total // 2)
        return Evaluation(config, stats, prediction, lifetime_of(self.spec, config, prediction))


def _check_mode_rules(config: Configuration) -> None:
    if config.streaming:
        assert (config.batch, config.epochs, config.restore_best) == (1, 1, False)
        assert config.replay <= config.samples
    else:
        assert config.replay == 0


# --- the space ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_trials_suggest_only_the_parameters_their_mode_takes(sampler, tmp_path):
    spec = spec_of(tmp_path, sampler)
    from dse.search.optimize import make_sampler

    study = optuna.create_study(directions=["maximize"], sampler=make_sampler(spec, 0))
    configs = []

    def objective(trial):
        config = spec.configuration(spec.space.propose(trial))
        configs.append((config, dict(trial.params)))
        return config.samples + config.replay

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study.optimize(objective, n_trials=40)
    modes = {c.mode for c, _ in configs}
    assert modes == {"stored", "streaming"}
    for config, params in configs:
        _check_mode_rules(config)
        if config.streaming:  # batch, epochs and restore_best are not searched in a streaming trial
            assert not set(params) & {"batch", "epochs", "restore_best", "patience"}
            assert "replay" in params
        else:
            assert "replay" not in params and {"batch", "epochs"} <= set(params)


def test_points_are_the_distinct_configurations(tmp_path):
    spec = spec_of(tmp_path, "grid")
    points = spec.space.points()
    assert len(points) == DISTINCT == spec.space.grid_size()
    fixed = {"lr": 0.02}
    configs = [spec.configuration(resolve({**fixed, **p})) for p in points]
    assert len({c for c in configs}) == DISTINCT  # no two points collapse onto one configuration
    for c in configs:
        _check_mode_rules(c)
    assert sum(c.streaming for c in configs) == 24
    assert {(c.samples, c.replay) for c in configs if c.streaming} == {(20, 0), (20, 8), (20, 20), (40, 0),
                                                                       (40, 8), (40, 32)}


def test_a_ring_larger_than_the_samples_holds_them_all():
    values = resolve({"mode": "streaming", "samples": 20, "replay": 32, "batch": 8, "epochs": 10})
    assert values["replay"] == 20 and {k: values[k] for k in STREAMING_FIXED} == STREAMING_FIXED
    assert resolve({"mode": "stored", "samples": 20, "replay": 32})["replay"] == 0
    assert resolve({"samples": 20, "batch": 8}) == {"samples": 20, "batch": 8}  # no mode: as before


def test_grid_runs_each_distinct_configuration_once(tmp_path):
    spec = spec_of(tmp_path, "grid")
    evaluator = FakeEvaluator(spec)
    result = run_study(spec, tmp_path / "out", trials=200, evaluator=evaluator, progress=False)
    assert any("the grid has 56 points" in n for n in result.notes)
    assert len(evaluator.calls) == DISTINCT and len(set(evaluator.calls)) == DISTINCT
    # resuming finds nothing left to run
    again = run_study(spec, tmp_path / "out", trials=200, evaluator=FakeEvaluator(spec), progress=False)
    assert again.ran == 0


def test_an_unconditional_grid_is_optunas_grid_as_before(tmp_path):
    text = SPACE.replace('mode = ["stored", "streaming"]\nreplay = [0, 8, 32]\n', "")
    spec = spec_of(tmp_path, "grid", text)
    from dse.search.optimize import make_sampler

    assert isinstance(make_sampler(spec, 0), optuna.samplers.GridSampler)
    assert spec.space.grid_size() == 32 and spec.space.modes() == ("stored",)


def test_streaming_only_study_needs_no_epochs(tmp_path):
    text = SPACE.replace('mode = ["stored", "streaming"]', 'mode = "streaming"').replace(
        "epochs = [5, 10]\nbatch = [4, 8]\n", "")
    spec = spec_of(tmp_path, "random", text)
    assert spec.space.modes() == ("streaming",)
    config = spec.configuration(spec.space.first())
    assert config.streaming and config.epochs == 1


# --- the study end to end with the mode in the reports -------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("streamy")
    spec = spec_of(root, "random", check=True)
    result = run_study(spec, root / "out", trials=24, evaluator=FakeEvaluator(spec), progress=False)
    from dse.reports.report import write_reports

    write_reports(result.study, spec, root / "out")
    return root / "out"


def test_reports_mark_the_mode(finished, capsys):
    table = pd.read_csv(finished / "trials.csv")
    assert {"mode", "replay"} <= set(table.columns) and set(table["mode"]) == {"stored", "streaming"}
    streaming, stored = table[table["mode"] == "streaming"], table[table["mode"] == "stored"]
    assert (streaming["batch"] == 1).all() and (streaming["epochs"] == 1).all() and (~streaming["restore_best"]).all()
    assert (stored["replay"] == 0).all()
    summary = (finished / "summary.md").read_text()
    assert "| mode |" in summary and "predicted latency per sample (ms)" in summary
    assert "## Streaming and stored" in summary and "streaming pick(s)" in summary
    pareto = pd.read_csv(finished / "pareto.csv")
    assert "streaming" in set(pareto["mode"])  # the halved RAM puts streaming on the front
    for name in ("pareto_accuracy_ram.png", "accuracy_vs_samples.png", "lifetime_breakdown.png"):
        assert (finished / name).read_bytes()[:4] == b"\x89PNG"

    capsys.readouterr()
    assert main(["show", str(finished)]) == 0
    shown = capsys.readouterr().out
    assert "mode" in shown.splitlines()[1] and "streaming" in shown
    assert main(["show", str(finished), "--json"]) == 0
    picks = json.loads(capsys.readouterr().out)["picks"]
    streams = [p for p in picks if p["configuration"]["mode"] == "streaming"]
    assert streams and all(p["predicted"]["sample_latency_s"] > 0 for p in streams)
    row = streaming.iloc[0].to_dict()
    expected = (row["predicted.time.collection_s"] + row["predicted.time.training_s"]) / row["samples"]
    assert sample_latency_s(row) == pytest.approx(row.get("predicted.sample_latency_s", expected), rel=1e-9)
    assert sample_latency_s(stored.iloc[0].to_dict()) is None


def test_ram_comparison_of_streaming_and_stored_picks():
    rows = [  # number, mode, accuracy, RAM
        (0, "streaming", 0.900, 10_000), (1, "stored", 0.905, 12_000), (2, "stored", 0.895, 20_000),
        (3, "streaming", 0.800, 30_000), (4, "stored", 0.801, 25_000), (5, "streaming", 0.500, 5_000),
    ]
    table = pd.DataFrame([{"number": n, "mode": m, "accuracy_mean": a, "predicted.ram_total": r,
                           "state": "COMPLETE", "feasible": True} for n, m, a, r in rows])
    result = {r["trial"]: r for r in ram_comparison(table, table)}
    assert result[0]["equal_picks"] == 2 and result[0]["less_than_every"] is True
    assert result[0]["equal_min_ram"] == 12_000
    assert result[3]["less_than_every"] is False and result[3]["equal_min_ram"] == 25_000
    assert result[5]["less_than_every"] is None and result[5]["stored_min_ram"] == 12_000
    assert result[0]["less_than_stored_trials"] is True and result[3]["less_than_stored_trials"] is False


# --- dse predict --mode -------------------------------------------------------------------------------------------

PREDICT = ["predict", "--model", "digits_cnn", "--board", "nrf52840dk", "--cut", "pool2", "--hidden", "8",
           "--samples", "40"]


def test_predict_streaming_sets_its_fixed_settings(capsys):
    assert main([*PREDICT, "--mode", "streaming", "--replay", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    config = out["configuration"]
    assert (config["mode"], config["replay"], config["batch"], config["epochs"], config["restore_best"]) == (
        "streaming", 8, 1, 1, False)
    assert main([*PREDICT, "--mode", "streaming", "--replay", "8", "--batch", "1", "--epochs", "1",
                 "--no-restore-best"]) == 0
    text = capsys.readouterr().out
    assert "streaming" in text and "replay ring 8" in text and "sample_latency_s" in text
    assert main([*PREDICT, "--epochs", "5"]) == 0  # stored: as before
    assert "5 epochs, batch 8" in capsys.readouterr().out


@pytest.mark.parametrize("extra, needle", [
    (["--mode", "streaming", "--epochs", "5"], "--epochs 5"),
    (["--mode", "streaming", "--batch", "8"], "--batch 8"),
    (["--mode", "streaming", "--restore-best"], "--restore-best"),
    (["--mode", "streaming", "--replay", "41"], "--replay 41"),
    (["--epochs", "5", "--replay", "8"], "--replay 8"),
    ([], "--epochs"),
    (["--mode", "online"], "--mode"),
])
def test_predict_conflicting_flags_exit_2(extra, needle, capsys):
    assert main([*PREDICT, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dse: error:") and needle in err


# --- lifetime of a streaming configuration -------------------------------------------------------------------------

def test_streaming_adaptation_event_is_the_streaming_predictions_phases(tmp_path):
    spec = spec_of(tmp_path)
    config = Configuration(task="digits", model="digits_cnn", cut="pool2", hidden=8, samples=40, mode="streaming",
                           replay=8, **STREAMING_FIXED)
    prediction = predict(config, "nrf52840dk")
    life = lifetime_for(config, prediction, spec.deployment, "nrf52840dk")
    streamed = sum(prediction.phases[p].energy_mj for p in ("collection", "training"))
    assert life.adaptation.energy_mj == pytest.approx(streamed, rel=1e-12)
    assert life.upload.energy_mj > 0  # the BLE alternative uploads the same N samples
    stored = Configuration(task="digits", model="digits_cnn", cut="pool2", hidden=8, samples=40, epochs=1, batch=1,
                           restore_best=False)
    assert life.upload == lifetime_for(stored, predict(stored, "nrf52840dk"), spec.deployment, "nrf52840dk").upload


def test_the_shipped_streaming_study_file_reads():
    from dse.study.file import load_study_file

    spec = load_study_file(Path(__file__).resolve().parents[1] / "studies" / "streaming_vs_stored.toml")
    assert spec.space.modes() == ("stored", "streaming") and spec.deployment is not None
    assert [o.name for o in spec.objectives] == ["accuracy", "ram", "lifetime"]
