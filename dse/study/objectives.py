"""What is measured and what is constrained. Accuracy is simulated; every other measure is a prediction of the
cost models, and its label says so."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Measure:
    """A number taken from one evaluation; `natural` is the only sensible direction to optimize it."""

    name: str
    natural: str  # "maximize" | "minimize"
    label: str  # axis / column label, with the unit of `display`
    column: str  # trials.csv column holding the raw value
    get: Callable[[object], float]  # evaluation -> raw value (fraction, mJ, bytes, s)
    scale: float = 1.0  # raw value / scale = displayed value

    def display(self, raw: float) -> float:
        return raw / self.scale


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure("accuracy", "maximize", "simulated accuracy (%)", "accuracy_mean", lambda e: e.stats.mean, 0.01),
        Measure("energy", "minimize", "predicted energy (mJ)", "predicted.energy_mj", lambda e: e.prediction.energy_mj),
        Measure("ram", "minimize", "predicted peak RAM (KB)", "predicted.ram_total", lambda e: e.prediction.ram_total,
                1024.0),
        Measure("latency", "minimize", "predicted latency (s)", "predicted.latency_s", lambda e: e.prediction.latency_s),
        Measure("flash", "minimize", "predicted flash (KB)", "predicted.flash_total",
                lambda e: e.prediction.flash_total, 1024.0),
        Measure("lifetime", "maximize", "predicted battery lifetime (days)", "lifetime.on_device_days",
                lambda e: e.lifetime.on_device.days),  # on-device adaptation; needs the study's [deployment]
    )
}

# the cost measures and the key of each in a prediction's to_dict()
COSTS = {"ram": "ram_total", "flash": "flash_total", "energy": "energy_mj", "latency": "latency_s"}


@dataclass(frozen=True)
class Objective:
    measure: Measure

    @property
    def name(self) -> str:
        return self.measure.name

    @property
    def direction(self) -> str:
        return self.measure.natural


@dataclass(frozen=True)
class Constraint:
    """`measure` must stay at or below (`upper`) or at or above the limit, given in the user's unit.

    The value handed to Optuna is the relative violation (value / limit - 1, sign flipped for lower bounds):
    feasible when <= 0, and comparable across units when a sampler sums violations.
    """

    key: str  # study-file key, e.g. "ram_kb"; "board_ram" / "board_flash" for the board's own limits
    measure: Measure
    limit: float  # in the user's unit
    unit_scale: float  # raw value / unit_scale = value in the user's unit
    upper: bool = True

    def violation(self, raw: float) -> float:
        value = raw / self.unit_scale
        return (value / self.limit - 1.0) if self.upper else (1.0 - value / self.limit)

    def describe(self) -> str:
        op = "<=" if self.upper else ">="
        return f"{self.key}: {self.measure.name} {op} {self.limit:g}"


# study-file constraint key -> (measure, raw value per user unit, upper bound?)
LIMITS: dict[str, tuple[str, float, bool]] = {
    "ram_kb": ("ram", 1024.0, True),
    "flash_kb": ("flash", 1024.0, True),
    "energy_mj": ("energy", 1.0, True),
    "latency_s": ("latency", 1.0, True),
    "accuracy_min": ("accuracy", 1.0, False),
}


def user_constraint(key: str, limit: float) -> Constraint:
    measure, scale, upper = LIMITS[key]
    return Constraint(key, MEASURES[measure], float(limit), scale, upper)


def board_constraints(ram_bytes: int, flash_bytes: int) -> list[Constraint]:
    """The board's memories are always a limit, whatever the study file says."""
    return [
        Constraint("board_ram", MEASURES["ram"], float(ram_bytes), 1.0),
        Constraint("board_flash", MEASURES["flash"], float(flash_bytes), 1.0),
    ]
