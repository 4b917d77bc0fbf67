"""Parallel studies on the local SQLite storage: claiming queued trials is exclusive across processes, K workers
run exactly the missing trials (numbers 0..N-1, none lost, none twice), resuming after a killed run, and the
one-line errors of `dse worker`."""
from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from dse.cli import main
from dse.study.folder import StudyFolder
from dse.search.workers import claim, enqueue, open_storage
from conftest import model_cache_at

REPO = Path(__file__).resolve().parents[1]
TINY = (REPO / "studies" / "tiny.toml").read_text()


@pytest.fixture(scope="module", autouse=True)
def model_cache(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "microtl-cache-workers"  # shared by both worker test modules
    cache.mkdir(exist_ok=True)
    with model_cache_at(cache):
        yield cache


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _claim_in_rounds(url: str, name: str, rounds: int, barrier, out) -> None:
    """Claim one trial per round; the barrier makes the four processes claim at the same moment every round."""
    storage = open_storage(url)
    study_id = storage.get_study_id_from_name(name)
    mine = []
    for _ in range(rounds):
        barrier.wait(timeout=60)
        if (trial_id := claim(storage, study_id)) is not None:
            mine.append(trial_id)
    out.put(mine)


def test_claiming_a_queued_trial_is_exclusive_across_processes(tmp_path):
    # Free-running claimers let one process drain the queue before the others start (CI saw 60/0/0/0), so the
    # processes claim in lockstep rounds: every round is a real race for the same queue, and with at least as many
    # queued trials as processes each must win exactly one per round.
    url = f"sqlite:///{tmp_path / 'q.db'}"
    study = optuna.create_study(storage=url, study_name="q")
    enqueue(study, 60)
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_claim_in_rounds, args=(url, "q", 16, barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    ids = [i for mine in claimed for i in mine]
    assert len(ids) == len(set(ids)) == 60  # every trial taken exactly once; the 16th round finds the queue empty
    assert sorted(len(mine) for mine in claimed) == [15, 15, 15, 15]
    states = Counter(t.state for t in optuna.load_study(study_name="q", storage=url).trials)
    assert states == {TrialState.RUNNING: 60}


def _check_exact(trials, target):
    assert [t.number for t in trials] == list(range(target))
    assert all(t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and t.user_attrs.get("fail_reason"))
               for t in trials), Counter(t.state.name for t in trials)


def test_local_workers_run_exactly_the_missing_trials_and_resume(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(tiny), "--out", str(out), "--trials", "12", "--workers", "2", "--quiet"]) == 0
    study, _ = StudyFolder(out).load()
    trials = study.get_trials(deepcopy=False)
    _check_exact(trials, 12)
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    workers = Counter(t.user_attrs.get("worker") for t in trials)
    assert None not in workers and 1 <= len(workers) <= 2
    assert (out / "trials.csv").is_file() and (out / "summary.md").is_file()
    assert "12 trials (12 run now)" in capsys.readouterr().err

    # what a killed parallel run leaves: one trial RUNNING, two still queued
    study.ask()
    enqueue(study, 2)
    assert main(["run", str(tiny), "--out", str(out), "--trials", "17", "--workers", "1", "--quiet"]) == 0
    trials = StudyFolder(out).load()[0].get_trials(deepcopy=False)
    _check_exact(trials, 17)
    assert trials[12].state == TrialState.FAIL and trials[12].user_attrs["fail_reason"] == "interrupted"
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 16

    # nothing missing: nothing queued, nothing run; a plain sequential run sees the same study
    assert main(["run", str(tiny), "--out", str(out), "--trials", "17", "--workers", "2", "--quiet"]) == 0
    assert main(["run", str(tiny), "--out", str(out), "--trials", "17", "--quiet"]) == 0
    assert len(StudyFolder(out).load()[0].trials) == 17


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dse: error: "), err
    return err


def test_worker_errors_are_one_line_and_write_nothing(tiny, tmp_path, capsys):
    assert main(["worker", str(tiny)]) == 2
    err = _one_error_line(capsys)
    assert "study.storage" in err and str(tiny) in err

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    assert main(["worker", str(tiny), "--storage", url]) == 2
    err = _one_error_line(capsys)
    assert "no study 'tiny'" in err and "dse run" in err

    assert main(["run", str(tiny), "--storage", url, "--out", str(tmp_path / "out"), "--trials", "2", "--quiet"]) == 0
    capsys.readouterr()
    tiny.write_text(TINY.replace("repeats = 2", "repeats = 3"))
    assert main(["worker", str(tiny), "--storage", url]) == 2
    assert "study.repeats" in _one_error_line(capsys)

    tiny.write_text(TINY)
    assert main(["worker", str(tiny), "--storage", url]) == 0  # the study is complete: nothing waits
    assert "nothing to do" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == 2

    assert main(["run", str(tiny), "--workers", "0"]) == 2
    assert "--workers" in _one_error_line(capsys)
