"""The search: an Optuna multi-objective study over the space, resumable from its storage.

Rerunning the same study file runs only the missing trials; trials an interrupted run left RUNNING are
marked FAIL ("interrupted"); a trial whose evaluation raises is recorded FAIL with its reason and the study goes on.
With `workers`, the missing trials are queued and run by worker processes (dse.search.workers).
"""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from dse.console import say
from dse.search.evaluate import Evaluator
from dse.search.trial import Objective, Progress, make_sampler
from dse.search.workers import coordinate
from dse.study.file import StudySpec
from dse.study.folder import StudyFolder, check_stored_spec, find_study, store_spec
from dse.study.storage import check_url, open_storage
from dse.study.trial_attrs import ATTR_FAIL, FINISHED


@dataclass
class StudyRun:
    """What one `dse run` did: the study, the finished trials it aimed at, how many it ran, whether it was stopped."""

    study: optuna.Study
    target: int  # total number of finished trials asked for
    ran: int  # trials run by this call
    interrupted: bool
    notes: list[str]


def mark_interrupted(storage: BaseStorage, study_id: int) -> int:
    """Close trials a stopped run left RUNNING (single-writer studies: nobody else is running them)."""
    count = 0
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, ATTR_FAIL, "interrupted")
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        count += 1
    return count


class StopOnInterrupt:
    """Ctrl-C during a study: the first one asks the study to stop after the trial in progress (a clean stop:
    nothing is cut short), the second one interrupts at once. A KeyboardInterrupt raised wherever the signal lands
    can be swallowed (Python ignores exceptions raised in weakref callbacks and __del__), so the first signal only
    sets a flag that a study callback reads. Installed only in the main thread."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:  # noqa: ARG002 - signal's signature
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C raises KeyboardInterrupt
        say("dse: stopping after the trial in progress (Ctrl-C again to stop now)")

    def callback(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:  # noqa: ARG002
        if self.requested:
            study.stop()

    def __enter__(self) -> "StopOnInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_study(spec: StudySpec, out: str | Path, trials: int | None = None, evaluator=None,
              progress: bool = True, workers: int | None = None) -> StudyRun:
    """Run (or resume) the study in folder `out` until `trials` (default: the study file's) have finished;
    with `workers`, in that many worker processes (they evaluate with the real Evaluator)."""
    if workers is not None and evaluator is not None:
        raise ValueError("worker processes evaluate with the real Evaluator; no evaluator can be passed")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # dse reports itself: progress bar, failed trials
    try:
        return _run(spec, Path(out), trials, evaluator, progress, workers)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _run(spec: StudySpec, out: Path, trials: int | None, evaluator, progress: bool,
         workers: int | None = None) -> StudyRun:
    folder = StudyFolder(out)
    folder.check(spec)  # nothing is written before every check has passed
    url = folder.storage_url(spec.storage)
    check_url(url)  # a malformed URL, an unknown database or a file that is no database: one line, nothing written
    notes: list[str] = []
    target = trials if trials is not None else spec.trials
    if spec.sampler == "grid" and spec.space.grid_size() < target:
        notes.append(f"the grid has {spec.space.grid_size()} points: running {spec.space.grid_size()} trials, "
                     f"not {target}")
        target = spec.space.grid_size()

    finished, waiting, storage = 0, 0, None
    if folder.has_database(spec):
        storage = open_storage(url)
        study_id = find_study(storage, spec.name)
        if study_id is not None:
            check_stored_spec(storage, study_id, spec, str(folder.path) if spec.storage is None else url)
            stored = storage.get_all_trials(study_id, deepcopy=False)
            finished = sum(1 for t in stored if t.state in FINISHED or t.state == TrialState.RUNNING)
            waiting = sum(1 for t in stored if t.state == TrialState.WAITING)  # queued by a parallel run
    # queued trials are claimed ones: run them, and count them towards the target
    remaining = max(0, target - finished - waiting) + waiting

    evaluator = evaluator if evaluator is not None else Evaluator(spec)
    if remaining:
        # models reports in one line what it prepares (pretraining the first time, cached later), then the result
        evaluator.prepare(progress=say if progress else None)

    folder.create(spec)
    storage = storage or open_storage(url)
    study_id = find_study(storage, spec.name)
    if study_id is not None:
        closed = mark_interrupted(storage, study_id)
        if closed:
            notes.append(f"{closed} trial(s) left running by an interrupted run marked FAIL (interrupted)")
    stored = len(storage.get_all_trials(study_id, deepcopy=False)) if study_id is not None else 0
    study = optuna.create_study(storage=storage, study_name=spec.name, directions=spec.directions,
                                sampler=make_sampler(spec, stored), load_if_exists=True)
    store_spec(study, spec)
    if not remaining:
        return StudyRun(study, target, 0, False, notes)

    bar = Progress(max(target, finished + remaining), finished, progress)
    if workers is not None:
        try:
            done = coordinate(spec, url, study, storage, find_study(storage, spec.name),
                              max(target, finished + waiting), workers, bar)
        finally:
            bar.close()
        return StudyRun(study, target, done.ran, done.interrupted, notes + done.notes)
    before = len(study.get_trials(deepcopy=False))
    interrupted = False
    stop = StopOnInterrupt()
    try:
        with stop:
            study.optimize(Objective(spec, evaluator), n_trials=remaining, catch=(Exception,),
                           callbacks=[bar, stop.callback])
        interrupted = stop.requested
    except KeyboardInterrupt:
        interrupted = True
        try:  # close the trial Ctrl-C cut short now; if this fails too, the next run does it on resume
            mark_interrupted(storage, find_study(storage, spec.name))
        except Exception:  # noqa: BLE001
            pass
    finally:
        bar.close()
    ran = len(study.get_trials(deepcopy=False)) - before
    return StudyRun(study, target, ran, interrupted, notes)
