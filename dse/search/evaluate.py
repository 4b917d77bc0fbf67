"""One trial's evaluation: accuracy from the models' simulation, cost from the cost models' prediction.

The only place dse calls into models and cost_models at run time; tests replace `Evaluator` to stay fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cost_models.lifetime import lifetime_for
from dse.study.file import StudySpec
from dse.study.price import price
from models.simulate import prepare, simulate
from vocabulary.configuration import Configuration


@dataclass
class Evaluation:
    config: Configuration
    stats: Any  # models.simulate.AccuracyStats
    prediction: Any  # cost_models.predict.Prediction
    lifetime: Any = None  # cost_models.lifetime.LifetimeComparison when the study has a [deployment]


class Evaluator:
    """Simulates accuracy (`repeats` sample draws, the study seed: every trial sees the same draws) and prices
    the configuration with the epochs early stopping actually ran."""

    def __init__(self, spec: StudySpec) -> None:
        self.spec = spec

    def _data_kwargs(self) -> dict:
        task = self.spec.task
        kwargs: dict = {}
        if task.data is not None:
            kwargs["data_path"] = task.data
        if task.source_labels is not None:
            kwargs["source_labels"] = task.source_labels
            kwargs["target_labels"] = task.target_labels
        return kwargs

    def prepare(self, progress=None) -> None:
        """Warm the caches (data splits, pretrained and quantized network, features at the cuts of the space):
        slow the first time only (pretraining is cached on disk)."""
        cuts = tuple(self.spec.space.params["cut"].grid())
        prepare(self.spec.task.name, self.spec.model, self.spec.scheme, cuts=cuts, progress=progress,
                **self._data_kwargs())

    def __call__(self, config: Configuration) -> Evaluation:
        stats = simulate(config, self.spec.repeats, self.spec.seed, **self._data_kwargs())
        prediction = price(config, self.spec.board, stats.epochs_mean, self.spec.task.classes,
                           getattr(self.spec, "firmware", None))
        return Evaluation(config, stats, prediction, lifetime_of(self.spec, config, prediction))


def lifetime_of(spec: StudySpec, config: Configuration, prediction):
    """Battery lifetime of both alternatives under the study's [deployment] (None without one)."""
    if getattr(spec, "deployment", None) is None:
        return None
    return lifetime_for(config, prediction, spec.deployment, spec.board, classes=spec.task.classes,
                        firmware=getattr(spec, "firmware", None))
