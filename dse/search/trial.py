"""One trial under Optuna, in the study's process or a worker's (dse.search.workers): the study file's sampler, the
objective that evaluates a proposed configuration and records it, the progress bar."""
from __future__ import annotations

import math
import sys
from typing import Callable

import numpy as np
import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from dse.search.evaluate import Evaluation
from dse.search.grid import PointsSampler
from dse.study.file import StudySpec
from dse.study.trial_attrs import (
    ATTR_ACCURACY,
    ATTR_CONFIG,
    ATTR_FAIL,
    ATTR_LIFETIME,
    ATTR_NOTES,
    ATTR_PHASES,
    ATTR_PREDICTED,
    LEGACY_CONSTRAINTS,
)


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
        return PointsSampler(spec.space.points(), seed=seed)
    if spec.sampler == "grid" and spec.space.varying():
        return optuna.samplers.GridSampler(spec.space.grid(), seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


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


class Progress:
    """tqdm bar on stderr: trial i/N and the best feasible accuracy so far."""

    def __init__(self, target: int, done: int, enabled: bool) -> None:
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
