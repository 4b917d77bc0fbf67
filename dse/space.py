"""The design space: what varies. Each parameter of a Configuration is fixed, a list of choices or a range; the
space turns an Optuna trial into a Configuration and, for the grid sampler, lists its finite grid."""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    import optuna

# Configuration fields a study file may vary, with their Python type. task, model and scheme come from other
# sections of the study file.
PARAM_TYPES: dict[str, type] = {
    "cut": str,
    "hidden": int,
    "samples": int,
    "epochs": int,
    "batch": int,
    "lr": float,
    "momentum": float,
    "decay": float,
    "patience": int,
    "restore_best": bool,
}


@dataclass(frozen=True)
class Fixed:
    value: object

    def describe(self) -> str:
        return _fmt(self.value)

    def grid(self) -> list:
        return [self.value]


@dataclass(frozen=True)
class Choice:
    values: tuple

    def describe(self) -> str:
        return "{" + ", ".join(_fmt(v) for v in self.values) + "}"

    def grid(self) -> list:
        return list(self.values)


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    step: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def finite(self) -> bool:
        return self.integer or self.step is not None

    def describe(self) -> str:
        text = f"{_fmt(self.low)} .. {_fmt(self.high)}"
        if self.step is not None:
            text += f" step {_fmt(self.step)}"
        if self.log:
            text += " (log)"
        return text

    def grid(self) -> list:
        if self.integer:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise ValueError("a float range without a step has no grid")
        n = int(round((self.high - self.low) / self.step))
        return [round(self.low + k * self.step, 12) for k in range(n + 1)]


Domain = Union[Fixed, Choice, Range]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Space:
    """Domains by parameter name, in study-file order; parameters not named keep the Configuration default."""

    params: dict[str, Domain]

    def varying(self) -> dict[str, Domain]:
        return {name: d for name, d in self.params.items() if not isinstance(d, Fixed)}

    def finite(self) -> bool:
        return all(not isinstance(d, Range) or d.finite for d in self.params.values())

    def grid(self) -> dict[str, list]:
        """Search space for optuna's GridSampler (varying parameters only)."""
        return {name: d.grid() for name, d in self.varying().items()}

    def grid_size(self) -> int:
        return prod(len(values) for values in self.grid().values())

    def first(self) -> dict[str, object]:
        """One point of the space (the first value of every domain), used to probe the cost model early."""
        return {name: d.grid()[0] if not isinstance(d, Range) else (int(d.low) if d.integer else d.low)
                for name, d in self.params.items()}

    def propose(self, trial: "optuna.trial.Trial") -> dict[str, object]:
        """Parameter values for one trial; fixed values are not suggested (they are not part of the search)."""
        values: dict[str, object] = {}
        for name, d in self.params.items():
            if isinstance(d, Fixed):
                values[name] = d.value
            elif isinstance(d, Choice):
                values[name] = trial.suggest_categorical(name, list(d.values))
            elif d.integer:
                values[name] = trial.suggest_int(name, int(d.low), int(d.high), step=int(d.step or 1), log=d.log)
            else:
                values[name] = trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
        return values
