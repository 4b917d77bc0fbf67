"""The grid sampler of a conditional space: every distinct configuration once (dse.study.space.Space.points), as
Optuna's GridSampler visits a Cartesian grid. A Cartesian grid over mode x replay x batch x epochs would run
the same configuration several times (a stored trial ignores replay, a streaming one batch and epochs); this one
lists only the configurations that differ.

Like GridSampler it works across processes: each trial records its point's index and the points' fingerprint in
its system attributes, and a new trial takes an unvisited point (finished and running trials count as visited;
when all are taken, a running one again), in an order shuffled by the seed. The study stops when every point is
finished."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

ATTR_POINT, ATTR_POINTS = "dse_grid_point", "dse_grid_points"


class PointsSampler(BaseSampler):
    def __init__(self, points: list[dict[str, Any]], seed: int | None = None) -> None:
        if not points:
            raise ValueError("a grid needs at least one point")
        self.points = [dict(p) for p in points]
        self.fingerprint = hashlib.sha256(json.dumps(self.points, sort_keys=True, default=str).encode()).hexdigest()
        self.order = list(np.random.default_rng(seed or 0).permutation(len(self.points)))

    def _taken(self, study: optuna.Study) -> tuple[set[int], set[int]]:
        finished, running = set(), set()
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if t.system_attrs.get(ATTR_POINTS) != self.fingerprint or ATTR_POINT not in t.system_attrs:
                continue
            if t.state.is_finished():
                finished.add(t.system_attrs[ATTR_POINT])
            elif t.state == TrialState.RUNNING:
                running.add(t.system_attrs[ATTR_POINT])
        return finished, running

    def unvisited(self, study: optuna.Study) -> list[int]:
        finished, running = self._taken(study)
        free = [i for i in self.order if i not in finished and i not in running]
        return free or [i for i in self.order if i not in finished]

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if ATTR_POINT in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return
        free = self.unvisited(study)
        point = int(free[0]) if free else int(self.order[trial.number % len(self.order)])
        study._storage.set_trial_system_attr(trial._trial_id, ATTR_POINTS, self.fingerprint)
        study._storage.set_trial_system_attr(trial._trial_id, ATTR_POINT, point)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        point = self.points[trial.system_attrs[ATTR_POINT]]
        if param_name not in point:
            raise ValueError(f"grid point {trial.system_attrs[ATTR_POINT]} has no parameter {param_name!r}")
        return point[param_name]

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: list[float] | None) -> None:
        finished, _ = self._taken(study)
        point = study._storage.get_trial_system_attrs(trial._trial_id).get(ATTR_POINT)
        if point is not None:
            finished.add(point)  # this trial is finished by now, though not yet in the storage
        if len(finished) >= len(self.points):
            study.stop()
