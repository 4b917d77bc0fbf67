"""The search: an Optuna multi-objective study over the space, resumable from its storage.

Rerunning the same study file runs only the missing trials; trials an interrupted run left RUNNING are
marked FAIL ("interrupted"); a trial whose evaluation raises is recorded FAIL with its reason and the study goes on.
With `workers`, the missing trials are queued and run by worker processes (dse.workers).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from .console import say
from .evaluate import Evaluation, Evaluator
from .folder import StudyFolder, check_stored_spec, find_study, store_spec
from .storage import check_url, open_storage
from .studyfile import StudySpec

FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
ATTR_FAIL = "fail_reason"
ATTR_CONFIG, ATTR_ACCURACY, ATTR_PREDICTED = "config", "accuracy", "predicted"
ATTR_NOTES, ATTR_PHASES = "prediction_notes", "phases_included"
ATTR_LIFETIME = "lifetime"  # cost_models.lifetime.LifetimeComparison.to_dict(), with a [deployment]
LEGACY_CONSTRAINTS = "constraints"  # trial system attr: the constraint values as a list, in the study file's order


@dataclass
class RunResult:
    study: optuna.Study
    target: int  # total number of finished trials asked for
    ran: int  # trials run by this call
    interrupted: bool
    notes: list[str]


def make_sampler(spec: StudySpec, salt: int | tuple[int, ...]) -> optuna.samplers.BaseSampler:
    """The study file's sampler, seeded from the study seed and the number of trials already stored: a resumed
    study continues deterministically instead of replaying the first trials' random draws (parallel workers add
    their index, so that they do not propose the same configurations)."""
    salt = (salt,) if isinstance(salt, int) else tuple(salt)
    seed = int(np.random.SeedSequence([spec.seed, *salt]).generate_state(1)[0])
    if spec.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=spec.population, seed=seed)
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if spec.sampler == "grid" and spec.space.conditional:  # streaming trials: the distinct configurations only
        from .grid import PointsSampler

        return PointsSampler(spec.space.points(), seed=seed)
    if spec.sampler == "grid" and spec.space.varying():
        return optuna.samplers.GridSampler(spec.space.grid(), seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def mark_interrupted(storage: BaseStorage, study_id: int) -> int:
    """Close trials a stopped run left RUNNING (single-writer studies: nobody else is running them)."""
    count = 0
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, ATTR_FAIL, "interrupted")
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        count += 1
    return count


def _plain(value):
    """JSON-safe copy (numpy scalars and tuples become Python numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Objective:
    """Optuna's objective: propose a configuration, evaluate it, record everything, return the objectives."""

    def __init__(self, spec: StudySpec, evaluate: Callable[..., Evaluation]) -> None:
        self.spec, self.evaluate = spec, evaluate

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        try:
            config = self.spec.configuration(self.spec.space.propose(trial))
            trial.set_user_attr(ATTR_CONFIG, config.to_dict())
            result = self.evaluate(config)
            self.record(trial, result)
            values = tuple(float(o.measure.get(result)) for o in self.spec.objectives)
            for objective, value in zip(self.spec.objectives, values):
                if not math.isfinite(value):
                    raise ValueError(f"objective {objective.name} is {value}")
            violations = [constraint.violation(float(constraint.measure.get(result)))
                          for constraint in self.spec.constraints]
            for constraint, violation in zip(self.spec.constraints, violations):
                trial.set_constraint(constraint.key, violation)
            if violations:  # optuna-dashboard (0.21) reads only the legacy list; Optuna reads it as keys "0", "1", ...
                trial.storage.set_trial_system_attr(trial._trial_id, LEGACY_CONSTRAINTS, [float(v) for v in violations])
            return values
        except KeyboardInterrupt:
            trial.set_user_attr(ATTR_FAIL, "interrupted")
            raise
        except Exception as exc:
            trial.set_user_attr(ATTR_FAIL, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
            raise

    @staticmethod
    def record(trial: optuna.Trial, result: Evaluation) -> None:
        stats, prediction = result.stats, result.prediction
        trial.set_user_attr(ATTR_ACCURACY, _plain({
            "mean": stats.mean, "std": stats.std, "per_repeat": list(stats.per_repeat),
            "epochs_mean": stats.epochs_mean,
            "epochs_per_repeat": list(getattr(stats, "epochs_per_repeat", []) or []),
            "feature_bytes": getattr(stats, "feature_bytes", None), "test_size": getattr(stats, "test_size", None),
        }))
        trial.set_user_attr(ATTR_PREDICTED, _plain(prediction.to_dict()))
        trial.set_user_attr(ATTR_NOTES, _plain(list(getattr(prediction, "notes", []) or [])))
        trial.set_user_attr(ATTR_PHASES, _plain(list(getattr(prediction, "phases_included", []) or [])))
        if getattr(result, "lifetime", None) is not None:
            trial.set_user_attr(ATTR_LIFETIME, _plain(result.lifetime.to_dict()))


class StopOnInterrupt:
    """Ctrl-C during a study: the first one asks the study to stop after the trial in progress (a clean stop:
    nothing is cut short), the second one interrupts at once. A KeyboardInterrupt raised wherever the signal lands
    can be swallowed (Python ignores exceptions raised in weakref callbacks and __del__), so the first signal only
    sets a flag that a study callback reads. Installed only in the main thread."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:  # noqa: ARG002 - signal's signature
        import signal

        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C raises KeyboardInterrupt
        say("dse: stopping after the trial in progress (Ctrl-C again to stop now)")

    def callback(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:  # noqa: ARG002
        if self.requested:
            study.stop()

    def __enter__(self) -> "StopOnInterrupt":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Progress:
    """tqdm bar on stderr: trial i/N and the best feasible accuracy so far."""

    def __init__(self, target: int, done: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=target, initial=min(done, target), file=sys.stderr, unit="trial", desc="trials",
                        disable=not enabled, dynamic_ncols=True)
        self.best: float | None = None

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == TrialState.FAIL:
            self.bar.write(f"trial {trial.number} failed: {trial.user_attrs.get(ATTR_FAIL, '?')}", file=sys.stderr)
        elif trial.state == TrialState.COMPLETE and all(v <= 0 for v in trial.constraints.values()):
            acc = trial.user_attrs.get(ATTR_ACCURACY, {}).get("mean")
            if acc is not None and (self.best is None or acc > self.best):
                self.best = acc
        if self.best is not None:
            self.bar.set_postfix_str(f"best feasible accuracy {100 * self.best:.1f}%", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run_study(spec: StudySpec, out: str | Path, trials: int | None = None, evaluator=None,
              progress: bool = True, workers: int | None = None) -> RunResult:
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
         workers: int | None = None) -> RunResult:
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
        return RunResult(study, target, 0, False, notes)

    bar = Progress(max(target, finished + remaining), finished, progress)
    if workers is not None:
        from .workers import coordinate

        try:
            done = coordinate(spec, url, study, storage, find_study(storage, spec.name),
                              max(target, finished + waiting), workers, bar)
        finally:
            bar.close()
        return RunResult(study, target, done.ran, done.interrupted, notes + done.notes)
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
    return RunResult(study, target, ran, interrupted, notes)
