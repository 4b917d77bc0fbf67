"""Parallel and distributed studies: a coordinator queues the missing trials, workers take them until none is left.

The coordinator (`dse run STUDY --workers K`) closes trials a stopped run left RUNNING, then creates exactly the
missing trials as WAITING (so their numbers are 0..N-1 with no gap and no surplus) and starts K worker processes.
A worker (`dse worker STUDY --storage URL`, also on other machines through an RDB storage such as PostgreSQL)
claims one WAITING trial at a time - an atomic state change in the database - evaluates it and tells the result.
K workers together therefore run exactly the queued trials, never more, whoever joins. Workers use one thread each
(torch, and BLAS/OpenMP via the environment, set before numpy or torch is imported): two multi-threaded
processes on two cores run slower than one.
"""
from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState, create_trial

from dse.console import say
from dse.errors import UserError
from dse.redact import ENV_URL, mask
from dse.search.evaluate import Evaluator
from dse.search.threads import THREAD_VARIABLES, limit_threads
from dse.search.trial import Objective, Progress, make_sampler
from dse.study.file import load_study_file
from dse.study.folder import check_stored_spec, find_study
from dse.study.storage import fail_stale
from dse.study.storage import open_storage as _open_storage
from dse.study.trial_attrs import ATTR_FAIL, FINISHED

ATTR_WORKER = "worker"  # trial user attr: host:pid of the worker that ran it
POLL_S = 0.5


def worker_env(url: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({name: "1" for name in THREAD_VARIABLES})
    if url is not None:
        env[ENV_URL] = url
    return env


def open_storage(url: str):
    """The storage, opened so that claiming a WAITING trial is atomic (see dse.study.storage)."""
    return _open_storage(url, claim=True)


# -- the queue ---------------------------------------------------------------------------------------------------
def count_states(storage, study_id: int) -> dict[str, int]:
    return dict(Counter(t.state.name for t in storage.get_all_trials(study_id, deepcopy=False)))


def enqueue(study, missing: int) -> None:
    """`missing` new WAITING trials (no fixed parameters: the sampler proposes them when a worker claims them)."""
    for _ in range(missing):
        study.add_trial(create_trial(state=TrialState.WAITING))


def claim(storage, study_id: int) -> int | None:
    """Take one WAITING trial for this process (its id), or None when the queue is empty."""
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                return trial_id
        except UpdateFinishedTrialError:
            continue
    return None


# -- a worker ----------------------------------------------------------------------------------------------------
@dataclass
class WorkerResult:
    ran: int
    failed: int
    interrupted: bool


def work(spec, url: str, index: int | None = None, progress: bool = True, evaluator=None) -> WorkerResult:
    """Join the study in storage `url` and run queued trials until none is left."""
    limit_threads()
    import torch

    torch.set_num_threads(1)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        try:
            storage = open_storage(url)
        except UserError:
            raise  # dse.study.storage's one line (password masked)
        except Exception as exc:  # noqa: BLE001 - a wrong URL, an unreachable server, a missing driver
            raise UserError(mask(f"storage {url}: cannot open it ({type(exc).__name__}: {exc})")) from None
        study_id = find_study(storage, spec.name)
        if study_id is None:
            raise UserError(mask(f"storage {url} holds no study {spec.name!r}: start it with `dse run {spec.path} "
                                 f"--storage {url} --workers K`"))
        check_stored_spec(storage, study_id, spec, mask(url))
        counts = count_states(storage, study_id)
        if not counts.get("WAITING"):
            if progress:
                say(f"dse: worker: nothing to do: no trial of study {spec.name!r} is waiting "
                    f"({sum(counts.values())} trials in storage)")
            return WorkerResult(0, 0, False)
        salt = (sum(counts.values()), index if index is not None else secrets.randbits(31))
        study = optuna.load_study(study_name=spec.name, storage=storage, sampler=make_sampler(spec, salt))
        evaluator = evaluator if evaluator is not None else Evaluator(spec)
        evaluator.prepare(progress=say if progress else None)
        total = sum(counts.values())
        done = sum(n for s, n in counts.items() if s in {f.name for f in FINISHED})
        bar = Progress(total, done, progress)
        try:
            return _drain(study, storage, study_id, Objective(spec, evaluator), bar, ATTR_FAIL)
        finally:
            bar.close()
    finally:
        optuna.logging.set_verbosity(verbosity)


def _drain(study, storage, study_id: int, objective, bar, attr_fail: str) -> WorkerResult:
    me = f"{socket.gethostname()}:{os.getpid()}"
    coordinator = _coordinator_pid()
    ran = failed = 0
    while True:
        if coordinator is not None and os.getppid() != coordinator:  # PR_SET_PDEATHSIG missed it (not Linux)
            say("dse: worker: the coordinator is gone; stopping")
            return WorkerResult(ran, failed, True)
        fail_stale(study)  # trials of dead workers: FAIL, and queued again (dse.study.storage)
        trial_id = claim(storage, study_id)
        if trial_id is None:
            return WorkerResult(ran, failed, False)
        trial = None
        try:
            storage.set_trial_user_attr(trial_id, ATTR_WORKER, me)
            trial = optuna.Trial(study, trial_id)
            with Heartbeat(storage, trial_id):
                try:
                    values = objective(trial)
                except KeyboardInterrupt:
                    raise
                except Exception:  # noqa: BLE001 - recorded with its reason by Objective; the study goes on
                    frozen = study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                    failed += 1
                else:
                    frozen = study.tell(trial, values, skip_if_finished=True)
        except KeyboardInterrupt:
            try:  # close only our own trial: other workers' trials are theirs
                storage.set_trial_user_attr(trial_id, attr_fail, "interrupted")
                storage.set_trial_state_values(trial_id, TrialState.FAIL)
            except UpdateFinishedTrialError:
                pass
            return WorkerResult(ran, failed, True)
        except UpdateFinishedTrialError:  # a coordinator closed it meanwhile (see mark_interrupted)
            continue
        ran += 1
        bar(study, frozen)


class Heartbeat:
    """Records the trial's heartbeat every interval while it runs (in a thread: an evaluation is one long call), so
    that the trial of a worker that dies stops beating and is failed and retried by whoever looks next."""

    def __init__(self, storage, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # noqa: BLE001 - a missed beat; the trial's own writes report a lost database
                pass

    def __enter__(self) -> "Heartbeat":
        if self.interval:
            self.storage.record_heartbeat(self.trial_id)
            self._thread = threading.Thread(target=self._beat, name="dse-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# -- workers die with their coordinator ---------------------------------------------------------------------------
COORDINATOR_ENV = "MICROTL_COORDINATOR_PID"  # set for the workers a coordinator starts
PR_SET_PDEATHSIG = 1


def _coordinator_pid() -> int | None:
    text = os.environ.get(COORDINATOR_ENV, "")
    return int(text) if text.isdigit() else None


def _die_with_parent(parent: int):
    """preexec_fn of a worker: Linux sends it SIGINT when the coordinator dies, even by kill -9 (the worker then
    closes its trial as interrupted, as after Ctrl-C); elsewhere the worker checks its parent between trials."""

    def set_death_signal() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)
        if os.getppid() != parent:  # the coordinator died before the death signal was armed
            os._exit(130)

    return set_death_signal


def reap(study, storage, study_id: int, pid: int, code: int) -> int:
    """Close the RUNNING trials of a worker process of ours that died (code: its exit code) as FAIL and queue their
    configurations again (the storage's retry callback), at once rather than after the heartbeat's grace period."""
    me = f"{socket.gethostname()}:{pid}"
    closed = 0
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get(ATTR_WORKER) != me:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        try:
            storage.set_trial_user_attr(trial_id, ATTR_FAIL, f"worker {me} died (exit code {code}); retried")
            if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:
            continue
        retry = storage.get_heartbeat_stale_trial_callback() if hasattr(storage, "get_heartbeat_stale_trial_callback") \
            else None
        if retry is not None:
            retry(study, storage.get_trial(trial_id))
        closed += 1
    return closed


# -- the coordinator ---------------------------------------------------------------------------------------------
@dataclass
class CoordinatorResult:
    ran: int
    interrupted: bool
    notes: list[str]


def worker_command(spec, index: int) -> list[str]:
    """The storage URL goes by environment (ENV_URL, worker_env), not argv: `ps` shows argv to every user."""
    return [sys.executable, "-m", "dse", "worker", str(Path(spec.path).resolve()), "--index", str(index), "--quiet"]


def coordinate(spec, url: str, study, storage, study_id: int, target: int, workers: int,
               progress) -> CoordinatorResult:
    """Queue the missing trials of `study` (trials left RUNNING are already closed), run `workers` worker
    processes on them, show the study's progress from storage, and wait for them."""
    counts = count_states(storage, study_id)
    claimed = sum(counts.values())
    enqueue(study, max(0, target - claimed))
    finished_states = {s.name for s in FINISHED}
    before = {t.number for t in storage.get_all_trials(study_id, deepcopy=False, states=FINISHED)}
    waiting = count_states(storage, study_id).get("WAITING", 0)
    notes: list[str] = []
    if not waiting:
        return CoordinatorResult(0, False, notes)
    env = {**worker_env(url), COORDINATOR_ENV: str(os.getpid())}

    def start(index: int) -> subprocess.Popen:
        return subprocess.Popen(worker_command(spec, index), env=env, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent(os.getpid()))

    procs = [start(i) for i in range(min(workers, waiting))]
    if not progress.bar.disable:
        progress.bar.write(f"dse: {waiting} queued trial(s), {len(procs)} worker process(es) starting (others may join "
                           f"with `dse worker {spec.path} --storage URL`)", file=sys.stderr)
    seen = set(before)
    interrupted = False
    reaped: set[int] = set()
    retried = 0
    beat = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
    stale_check = time.monotonic()
    try:
        while True:
            for p in procs:
                if p.poll() is not None and p.pid not in reaped:
                    reaped.add(p.pid)
                    if p.returncode not in (0, 130, -signal.SIGINT):
                        retried += reap(study, storage, study_id, p.pid, p.returncode)
            alive = [p for p in procs if p.poll() is None]
            if beat and time.monotonic() - stale_check > beat:  # workers elsewhere that died: heartbeats stopped
                stale_check = time.monotonic()
                fail_stale(study)
            for t in storage.get_all_trials(study_id, deepcopy=False, states=FINISHED):
                if t.number not in seen:
                    seen.add(t.number)
                    progress(study, t)
            if not alive:
                counts = count_states(storage, study_id)
                if counts.get("WAITING") and len(procs) < 2 * workers and \
                        (retried or any(p.returncode == 0 for p in procs)):
                    procs.append(start(len(procs)))  # a dead worker's trial was queued again: someone must run it
                    continue
                if not (beat and counts.get("RUNNING")):
                    break  # else: trials of workers elsewhere, which finish or go stale (and are retried)
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        interrupted = True
        for p in procs:  # a terminal's Ctrl-C reached them already; a signal to this process alone did not
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    codes = [p.returncode for p in procs]
    counts = count_states(storage, study_id)
    ran = sum(n for s, n in counts.items() if s in finished_states) - len(before)
    crashed = [(i, c) for i, c in enumerate(codes) if c not in (0, 130, -signal.SIGINT)]
    if crashed:
        notes.append("; ".join(f"worker {i} exited with code {c}" for i, c in crashed) + " (its output is above)"
                     + (f"; {retried} trial(s) it was running closed as FAIL and queued again" if retried else ""))
        interrupted = interrupted or bool(counts.get("WAITING"))
    if counts.get("WAITING") and not interrupted:
        interrupted = True  # every worker stopped (interrupted) while trials were still queued
    if counts.get("RUNNING") and not interrupted:
        notes.append(f"{counts['RUNNING']} trial(s) still running on other workers; `dse report DIR` redoes the "
                     "reports once they finish")
    return CoordinatorResult(ran, interrupted, notes)


# -- `dse worker` --------------------------------------------------------------------------------------------------
def cmd_worker(args) -> int:
    spec = load_study_file(args.study)
    url = args.storage or os.environ.get(ENV_URL) or spec.storage
    if url is None:
        raise UserError(f"{spec.path}: study.storage: missing, and no --storage URL given: a worker joins a study "
                        "through a shared storage (e.g. postgresql://user:password@host/db)")
    result = work(spec, url, index=args.index, progress=not args.quiet)
    if result.interrupted:
        say(f"dse: worker interrupted after {result.ran} trial(s); a trial it was running is closed (FAIL, "
            "interrupted), queued ones wait for the next `dse run` or `dse worker`")
        return 130
    if result.ran and not args.quiet:
        say(f"dse: worker: {result.ran} trial(s) run ({result.failed} failed); no trial of study {spec.name!r} is "
            "waiting any more")
    return 0
