"""The design space: what varies. Each parameter of a Configuration is fixed, a list of choices or a range; the
space turns an Optuna trial into a Configuration and, for the grid sampler, lists its finite grid.

The training mode is a conditional axis: a streaming trial takes batch 1, epochs 1 and restore_best off
(vocabulary.configuration.STREAMING_FIXED) and a replay ring; a stored trial takes replay 0. So a trial suggests only the
parameters its mode uses (Optuna's conditional parameters: TPE and NSGA-II see a smaller space for each mode, and
no trial is spent on a combination that collapses onto one already proposed), and `points` enumerates the distinct
configurations for the grid sampler. A replay ring larger than a trial's samples holds all of them: the trial runs
replay = samples (the same steps, the same accuracy, without a ring that can never fill).

Which parameters a study may vary, their types and bounds, and which mode takes which are the Configuration's own
declaration (vocabulary.configuration.DOMAINS); the space reads them from there.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Union

from vocabulary.configuration import AT_MOST, DOMAINS, STORED_ONLY, STREAMING_FIXED, STREAMING_ONLY

if TYPE_CHECKING:
    import optuna


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


def applies(name: str, mode: str) -> bool:
    """Whether a trial of `mode` takes parameter `name` from the space (else: fixed by the mode; the fields'
    declarations say which: vocabulary.configuration STORED_ONLY, STREAMING_ONLY)."""
    if mode == "streaming":
        return name not in STORED_ONLY
    return name not in STREAMING_ONLY


def resolve(values: dict[str, object]) -> dict[str, object]:
    """The configuration values of one trial: the mode's fixed settings, and a replay ring no larger than the
    samples (a larger ring would hold nothing more). Values without a mode are returned as they are (stored)."""
    mode = values.get("mode", "stored")
    out = dict(values)
    if mode == "streaming":
        out.update(STREAMING_FIXED)
        for name, most in AT_MOST.items():  # replay <= samples: a larger ring holds every sample
            value = int(out.get(name, DOMAINS[name].default))
            out[name] = min(value, int(out[most])) if most in out else value
    elif "mode" in out or any(name in out for name in STREAMING_ONLY):
        out.update({name: DOMAINS[name].default for name in STREAMING_ONLY})  # replay 0: no ring
    return out


@dataclass(frozen=True)
class Space:
    """Domains by parameter name, in study-file order; parameters not named keep the Configuration default."""

    params: dict[str, Domain]

    def varying(self) -> dict[str, Domain]:
        return {name: d for name, d in self.params.items() if not isinstance(d, Fixed)}

    def finite(self) -> bool:
        return all(not isinstance(d, Range) or d.finite for d in self.params.values())

    def modes(self) -> tuple[str, ...]:
        """The training modes the space explores (stored only when the study file names none)."""
        d = self.params.get("mode")
        return tuple(d.grid()) if d is not None else ("stored",)

    @property
    def conditional(self) -> bool:
        """Whether some trials fix parameters by their mode (any streaming trial does)."""
        return "streaming" in self.modes()

    def grid(self) -> dict[str, list]:
        """Search space for optuna's GridSampler (varying parameters only; an unconditional space)."""
        return {name: d.grid() for name, d in self.varying().items()}

    def points(self) -> list[dict[str, object]]:
        """The distinct configurations of a finite space, each as the values its trial suggests (varying
        parameters its mode takes): stored points first, then streaming ones, in study-file order. Combinations
        that collapse onto one configuration (a stored trial's replay, a streaming trial's batch or epochs, rings
        as large as the samples) are listed once."""
        varying = self.varying()
        fixed = {name: d.value for name, d in self.params.items() if isinstance(d, Fixed)}
        out, seen = [], set()
        for mode in self.modes():
            names = [n for n in varying if n != "mode" and applies(n, mode)]
            for combo in itertools.product(*(varying[n].grid() for n in names)):
                point = dict(zip(names, combo))
                if "mode" in varying:
                    point = {"mode": mode, **point}
                key = tuple(sorted(resolve({**fixed, "mode": mode, **point}).items(), key=lambda kv: kv[0]))
                if key not in seen:
                    seen.add(key)
                    out.append(point)
        return out

    def grid_size(self) -> int:
        if self.conditional:
            return len(self.points())
        return prod(len(values) for values in self.grid().values())

    def first(self, mode: str | None = None) -> dict[str, object]:
        """One point of the space (the first value of every domain; of `mode` when given), used to probe the cost
        model early."""
        values = {name: d.grid()[0] if not isinstance(d, Range) else (int(d.low) if d.integer else d.low)
                  for name, d in self.params.items()}
        if mode is not None and "mode" in self.params:
            values["mode"] = mode
        return resolve(values)

    def propose(self, trial: "optuna.trial.Trial") -> dict[str, object]:
        """Parameter values for one trial; fixed values are not suggested (they are not part of the search), and
        neither are those the trial's mode fixes."""
        mode = "stored"
        values: dict[str, object] = {}
        if "mode" in self.params:
            mode = values["mode"] = self._suggest(trial, "mode", self.params["mode"])
        for name, d in self.params.items():
            if name != "mode" and name not in AT_MOST and applies(name, mode):
                values[name] = self._suggest(trial, name, d)
        for name in AT_MOST:  # after the field that caps them (replay after samples: the ring is capped at them)
            if name in self.params and applies(name, mode):
                values[name] = self._suggest(trial, name, self.params[name])
        return resolve(values)

    @staticmethod
    def _suggest(trial: "optuna.trial.Trial", name: str, d: Domain) -> object:
        if isinstance(d, Fixed):
            return d.value
        if isinstance(d, Choice):
            return trial.suggest_categorical(name, list(d.values))
        if d.integer:
            return trial.suggest_int(name, int(d.low), int(d.high), step=int(d.step or 1), log=d.log)
        return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
