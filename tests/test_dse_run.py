"""The search end to end on the tiny study, with the real models and cost models: reports, resuming without
duplicates, failing trials, interruption (Ctrl-C) and refusing a changed study file."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from optuna.trial import TrialState

from dse.cli import main
from dse.search.evaluate import Evaluator
from dse.study.folder import StudyFolder
from dse.search.optimize import run_study
from dse.study.file import load_study_file
from conftest import model_cache_at

REPO = Path(__file__).resolve().parents[1]
TINY = (REPO / "studies" / "tiny.toml").read_text()
REPORTS = ["trials.csv", "pareto.csv", "summary.md", "accuracy_vs_samples.png", "ram_breakdown.png",
           "pareto_accuracy_energy.png", "pareto_accuracy_ram.png", "pareto_energy_ram.png", "flash_breakdown.png",
           "phases.png", "hypervolume.png", "parallel_coordinates.png", "param_importance.png"]


@pytest.fixture(scope="module", autouse=True)
def model_cache(tmp_path_factory):
    """Pretrained networks go to a temporary cache (pretrained once for this module, in about 5 s)."""
    cache = tmp_path_factory.mktemp("microtl-cache")
    with model_cache_at(cache):
        yield cache


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def trials_of(folder: Path):
    study, _ = StudyFolder(folder).load()
    return study.get_trials(deepcopy=False)


def test_tiny_study_end_to_end_then_resume(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "tiny.toml", "--quiet"]) == 0
    out = tmp_path / "runs" / "tiny"  # default: runs/<study name> under the working directory
    for name in REPORTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".*.tmp"))

    table = pd.read_csv(out / "trials.csv")
    assert list(table["number"]) == list(range(6)) and set(table["state"]) == {"COMPLETE"}
    for column in ("cut", "hidden", "samples", "lr", "accuracy_mean", "accuracy_std", "accuracy_per_repeat",
                   "epochs_mean", "feasible", "constraint.board_ram", "constraint.board_flash",
                   "constraint.ram_kb", "predicted.ram.sample_store", "predicted.ram_total",
                   "predicted.flash_total", "predicted.latency_s", "predicted.energy_mj", "predicted.ble.energy_mj"):
        assert column in table.columns, column
    assert table["accuracy_mean"].between(0, 1).all()
    assert (table["accuracy_per_repeat"].str.count(";") == 1).all()  # repeats = 2
    ram_terms = [c for c in table.columns if c.startswith("predicted.ram.")]
    assert (table[ram_terms].sum(axis=1) == table["predicted.ram_total"]).all()
    assert (table["feasible"] == (table["predicted.ram_total"] <= 64 * 1024)).all()

    study, spec = StudyFolder(out).load()
    pareto = pd.read_csv(out / "pareto.csv")
    assert set(pareto["number"]) == {t.number for t in study.best_trials}
    assert len(pareto) >= 1 and pareto["feasible"].all()
    summary = (out / "summary.md").read_text()
    assert "## Picks" in summary and "predicted RAM (KB)" in summary and "±" in summary
    assert "| cut | {conv2, pool2} |" in summary

    first = {t.number: (t.params, t.datetime_start) for t in study.get_trials(deepcopy=False)}
    assert main(["run", "tiny.toml", "--trials", "9", "--quiet"]) == 0
    trials = trials_of(out)
    assert [t.number for t in trials] == list(range(9))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.number: (t.params, t.datetime_start) for t in trials[:6]} == first  # the old trials are untouched
    assert len(pd.read_csv(out / "trials.csv")) == 9

    assert main(["run", "tiny.toml", "--trials", "9", "--quiet"]) == 0
    assert main(["run", "tiny.toml", "--quiet"]) == 0  # the file's 6 < 9 finished: nothing to run
    assert len(trials_of(out)) == 9

    capsys.readouterr()
    (out / "trials.csv").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "trials.csv").is_file()
    assert sorted(Path(line).name for line in capsys.readouterr().out.splitlines()) == sorted(REPORTS)
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("study tiny: 9 trials")
    assert shown[1].split()[:4] == ["pick", "trial", "cut", "hidden"]
    best = StudyFolder(out).load()[0].best_trials
    assert len(shown) == 2 + len({tuple(sorted(t.params.items())) for t in best})  # one row per configuration


def test_changed_study_file_is_refused_and_folder_unchanged(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(tiny), "--out", str(out), "--trials", "2", "--quiet"]) == 0
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in out.iterdir()}
    tiny.write_text(TINY.replace("repeats = 2", "repeats = 3"))
    capsys.readouterr()
    assert main(["run", str(tiny), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dse: error: ") and "study.repeats" in err
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in out.iterdir()} == before


class Wrapped:
    """The real evaluator, with one call replaced by an exception."""

    def __init__(self, spec, fail_on: int, exc: BaseException) -> None:
        self.real, self.fail_on, self.exc, self.calls = Evaluator(spec), fail_on, exc, 0

    def prepare(self, progress=None):
        self.real.prepare(progress)

    def __call__(self, config):
        self.calls += 1
        if self.calls == self.fail_on:
            raise self.exc
        return self.real(config)


def test_failing_trial_is_recorded_and_the_study_goes_on(tiny, tmp_path):
    spec = load_study_file(tiny)
    result = run_study(spec, tmp_path / "out", evaluator=Wrapped(spec, 2, RuntimeError("board on fire")),
                       progress=False)
    states = [t.state for t in result.study.get_trials(deepcopy=False)]
    assert len(states) == 6 and states.count(TrialState.FAIL) == 1 and states[1] == TrialState.FAIL
    failed = result.study.trials[1]
    assert failed.user_attrs["fail_reason"] == "RuntimeError: board on fire"
    assert failed.user_attrs["config"]["cut"] in ("conv2", "pool2")

    from dse.reports.report import write_reports

    write_reports(result.study, spec, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert table.loc[1, "state"] == "FAIL" and table.loc[1, "fail_reason"] == "RuntimeError: board on fire"
    assert "RuntimeError: board on fire (1 trial)" in (tmp_path / "out" / "summary.md").read_text()


def test_keyboard_interrupt_leaves_storage_resumable(tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    calls = {"n": 0}
    real_call = Evaluator.__call__

    def interrupted_on_third(self, config):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_call(self, config)

    monkeypatch.setattr(Evaluator, "__call__", interrupted_on_third)
    assert main(["run", str(tiny), "--out", str(out), "--quiet"]) == 130
    assert "resume" in capsys.readouterr().err
    trials = trials_of(out)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]
    assert trials[2].user_attrs["fail_reason"] == "interrupted"
    assert not (out / "trials.csv").exists()  # reports wait for a finished run (or `dse report`)

    monkeypatch.setattr(Evaluator, "__call__", real_call)
    assert main(["run", str(tiny), "--out", str(out), "--quiet"]) == 0
    trials = trials_of(out)
    assert [t.number for t in trials] == list(range(6))
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 5


def test_trial_left_running_by_a_killed_run_is_closed_on_resume(tiny, tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(tiny), "--out", str(out), "--trials", "2", "--quiet"]) == 0
    study, _ = StudyFolder(out).load()
    study.ask()  # what a run killed mid-trial leaves behind
    assert main(["run", str(tiny), "--out", str(out), "--trials", "4", "--quiet"]) == 0
    trials = trials_of(out)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL,
                                         TrialState.COMPLETE]
    assert trials[2].user_attrs["fail_reason"] == "interrupted"


def _complete_trials(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigint_stops_cleanly_and_the_next_run_resumes(tiny, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "dse", "run", str(tiny), "--out", str(out), "--trials", "400"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 90
        while _complete_trials(out / "study.db") < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no trials completed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "resume" in err
    trials = trials_of(out)
    assert 3 <= len(trials) < 400
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert all(t.state == TrialState.COMPLETE or t.user_attrs.get("fail_reason") == "interrupted" for t in trials)

    target = len(trials) + 2
    assert main(["run", str(tiny), "--out", str(out), "--trials", str(target), "--quiet"]) == 0
    assert [t.number for t in trials_of(out)] == list(range(target))


def test_npz_task_runs_with_labels_from_the_study_file(tmp_path):
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "digits.npz", x=(digits.images / 16.0)[..., None].astype(np.float32), y=digits.target)
    text = TINY.replace('[task]\nname = "digits"', '[task]\nname = "npz"\ndata = "digits.npz"\n'
                                                   "source_labels = [0, 1, 2, 3, 4, 5, 6]\ntarget_labels = [7, 9]")
    (tmp_path / "npz.toml").write_text(text.replace("trials = 6", "trials = 2"))
    assert main(["run", str(tmp_path / "npz.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    table = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert list(table["state"]) == ["COMPLETE", "COMPLETE"] and set(table["task"]) == {"npz"}


def test_storage_url_from_the_study_file(tmp_path):
    text = TINY.replace('sampler = "random"', 'sampler = "random"\nstorage = "sqlite:///db/shared.db"')
    (tmp_path / "s.toml").write_text(text.replace("trials = 6", "trials = 2"))
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(out), "--quiet"]) == 0
    assert (tmp_path / "db" / "shared.db").is_file() and not (out / "study.db").exists()  # relative to the file
    assert len(trials_of(out)) == 2 and (out / "trials.csv").is_file()
