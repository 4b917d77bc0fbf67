"""Misuse of parallel studies, measured: two `dse run` on one folder (the second refuses in one line), kill -9 of a
coordinator (its workers die with it; rerunning resumes), kill -9 of a worker it started (its trial is failed and
its configuration retried at once), and kill -9 of a worker started on its own (its heartbeat stops; the next
look fails and retries its trial). Each: 0 finished trials lost, 0 run twice, 0 orphan processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from dse.cli import main
from conftest import model_cache_at

REPO = Path(__file__).resolve().parents[1]
# tiny, with trials a little longer (more samples and epochs) so that a kill lands inside one
TINY = (REPO / "studies" / "tiny.toml").read_text().replace("epochs = 5", "epochs = 20")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MICROTL_HEARTBEAT_S": "1"}


@pytest.fixture(scope="module", autouse=True)
def model_cache(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "microtl-cache-workers"  # shared with the other worker test modules
    cache.mkdir(exist_ok=True)
    with model_cache_at(cache):
        ENV["MICROTL_CACHE"] = str(cache)
        yield cache


@pytest.fixture
def study(tmp_path) -> tuple[Path, Path]:
    path, out = tmp_path / "tiny.toml", tmp_path / "out"
    path.write_text(TINY)
    assert main(["run", str(path), "--out", str(out), "--trials", "1", "--quiet"]) == 0  # pretrained and cached
    return path, out


def _dse(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dse", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)


def _trials(out: Path):
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}").get_trials(deepcopy=False)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _frozen_with_trial(out: Path, pid: int, timeout: float, what: str):
    """Stop (SIGSTOP) worker `pid` at a moment it holds a RUNNING trial and return that trial: a check, then a kill,
    would race the trial's end (a tiny trial takes a fraction of a second; seen on CI: the trial had finished)."""
    deadline = time.monotonic() + timeout
    while True:
        if _running(out, pid):
            os.kill(pid, signal.SIGSTOP)
            held = _running(out, pid)
            if held:
                return held[0]
            os.kill(pid, signal.SIGCONT)
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _running(out: Path, worker_pid: int | None = None) -> list:
    try:
        trials = _trials(out)
    except Exception:  # noqa: BLE001 - the storage is being created
        return []
    return [t for t in trials if t.state == TrialState.RUNNING and t.params
            and (worker_pid is None or t.user_attrs.get("worker", "").endswith(f":{worker_pid}"))]


def _finished(out: Path) -> dict[int, tuple]:
    return {t.number: (t.state.name, tuple(t.values or ()), tuple(sorted(t.params.items())))
            for t in _trials(out) if t.state in (TrialState.COMPLETE, TrialState.FAIL)}


def test_a_second_run_on_the_same_folder_refuses_while_the_first_runs(study):
    path, out = study
    first = _dse("run", str(path), "--out", str(out), "--trials", "500", "--quiet")  # stopped below with Ctrl-C
    try:
        _wait_for(lambda: _running(out), 120, "the first run started no trial")
        second = subprocess.run([sys.executable, "-m", "dse", "run", str(path), "--out", str(out), "--trials", "8",
                                 "--quiet"], capture_output=True, text=True, env=ENV, timeout=300)
        report = subprocess.run([sys.executable, "-m", "dse", "report", str(out)], capture_output=True, text=True,
                                env=ENV, timeout=300)
        assert first.poll() is None, "the first run ended before the second one tried"
        first.send_signal(signal.SIGINT)  # Ctrl-C: stops after the trial in progress
        _, first_err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    for refused in (second, report):
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "is being written by `dse run` (pid" in lines[0], lines
    assert first.returncode == 130, first_err
    trials = _trials(out)
    assert [t.number for t in trials] == list(range(len(trials)))  # the refused ones added nothing
    assert all(t.state == TrialState.COMPLETE or t.user_attrs.get("fail_reason") == "interrupted" for t in trials)
    # the lock is the kernel's: free again now
    assert main(["report", str(out)]) == 0


def test_kill_9_of_the_coordinator_takes_its_workers_and_a_rerun_resumes(study):
    path, out = study
    target = 10
    coordinator = _dse("run", str(path), "--out", str(out), "--trials", str(target), "--workers", "2", "--quiet")
    workers = _wait_for(lambda: len(_children(coordinator.pid)) == 2 and _children(coordinator.pid), 120,
                        "the coordinator started no workers")
    _wait_for(lambda: len(_running(out)) >= 1, 180, "no worker started a trial")
    before = _finished(out)
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait(timeout=30)
    _wait_for(lambda: not any(_alive(p) for p in workers), 60, "the workers outlived their coordinator")
    after_kill = _finished(out)
    assert all(after_kill[n] == v for n, v in before.items())  # 0 finished trials lost
    assert not _running(out)  # each worker closed its own trial (interrupted)

    rerun = subprocess.run([sys.executable, "-m", "dse", "run", str(path), "--out", str(out), "--trials", str(target),
                            "--workers", "2", "--quiet"], capture_output=True, text=True, env=ENV, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    trials = _trials(out)
    final = _finished(out)
    assert all(final[n] == v for n, v in after_kill.items())  # still none lost
    assert [t.number for t in trials] == list(range(target))  # none twice, none missing
    assert all(t.state == TrialState.COMPLETE or t.user_attrs.get("fail_reason") == "interrupted" for t in trials)


def test_kill_9_of_a_worker_fails_its_trial_and_retries_the_configuration(study):
    path, out = study
    target = 8
    coordinator = _dse("run", str(path), "--out", str(out), "--trials", str(target), "--workers", "2", "--quiet")
    try:
        victim = _wait_for(lambda: next((p for p in _children(coordinator.pid) if _running(out, p)), None), 180,
                           "no worker of the coordinator started a trial")
        killed = _frozen_with_trial(out, victim, 180, "the worker started no further trial")
        os.kill(victim, signal.SIGKILL)
        _, err = coordinator.communicate(timeout=900)
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
    assert coordinator.returncode == 0, err
    assert "Traceback" not in err and "closed as FAIL and queued again" in err
    trials = _trials(out)
    dead = trials[killed.number]
    assert dead.state == TrialState.FAIL and "died" in dead.user_attrs["fail_reason"]
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    assert "fail_reason" not in retry.user_attrs
    assert [t.number for t in trials] == list(range(target + 1))  # the retry is the one extra trial
    assert Counter(t.state for t in trials) == {TrialState.COMPLETE: target, TrialState.FAIL: 1}
    assert not [p for p in _children(coordinator.pid) if _alive(p)]


def test_kill_9_of_a_joined_worker_is_caught_by_its_heartbeat(study):
    path, out = study
    target = 40
    url = f"sqlite:///{out / 'study.db'}"
    coordinator = _dse("run", str(path), "--out", str(out), "--trials", str(target), "--workers", "1", "--quiet")
    joiner = None
    try:
        _wait_for(lambda: any(t.state == TrialState.WAITING for t in _trials(out)), 120, "nothing queued")
        # a worker that finds no waiting trial stops (rc 0): the coordinator's own worker runs several trials a
        # second and may drain the queue while a joiner starts (CI), so joiners start again until one holds a trial
        deadline, killed = time.monotonic() + 180, None
        while killed is None:
            joiner = _dse("worker", str(path), "--storage", url, "--quiet")  # as on another machine: not a child
            while killed is None and joiner.poll() is None:
                if _running(out, joiner.pid):
                    os.kill(joiner.pid, signal.SIGSTOP)
                    held = _running(out, joiner.pid)
                    killed = held[0] if held else None
                    if killed is None:
                        os.kill(joiner.pid, signal.SIGCONT)
                assert time.monotonic() < deadline, "no joined worker started a trial"
                time.sleep(0.05)
            assert joiner.returncode in (None, 0), joiner.communicate()[1]
        joiner.send_signal(signal.SIGKILL)
        joiner.wait(timeout=30)
        _, err = coordinator.communicate(timeout=900)
    finally:
        for proc in (coordinator, joiner):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert coordinator.returncode == 0, err
    trials = _trials(out)
    assert trials[killed.number].state == TrialState.FAIL  # failed by the heartbeat check, not left RUNNING
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].params == trials[killed.number].params
    assert retries[0].state == TrialState.COMPLETE
    assert [t.number for t in trials] == list(range(target + 1))
    assert Counter(t.state for t in trials) == {TrialState.COMPLETE: target, TrialState.FAIL: 1}
