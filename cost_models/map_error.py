"""Cross-validated error of an emulator map (issue 4, parts 2 and 4): how well emulator instructions x a fitted CPI
predict the real board's cycles, and time x a fitted power its energy, on timed runs the fit did not see.

Two hold-outs over the usable (not flagged) timed runs: leave one shape out, where a shape is a task's series (the
paper's configuration at one cut and head, only N varies), so the CPI and power come from the other tasks alone;
and leave one run out. Pure functions over `TimedRun`s; the report and plots reuse firmware_error's tables."""
from __future__ import annotations

from .emulator_map import TimedRun, fit_cpi, fit_power
from .firmware_error import Point

COSTS = ("cycles.training", "energy.training")


def timed_runs_of(m) -> list[TimedRun]:
    """The timed runs a stored map was fitted on (its residuals keep them)."""
    return [TimedRun(r.run, r.task, r.samples, r.instructions, r.measured_s, r.energy_mj,
                     r.flag_reason if r.flagged else "") for r in m.residuals]


def _held_out(fit_on: list[TimedRun], r: TimedRun, clock_hz: float) -> list[Point]:
    cpi = fit_cpi([t.instructions for t in fit_on], [t.seconds for t in fit_on], clock_hz)
    cycles = r.seconds * clock_hz  # Table III times are of the board at its clock
    out = [Point("cycles.training", r.run, (r.task,), cycles, r.instructions * cpi,
                 r.instructions * cpi / cycles - 1)]
    with_energy = [t for t in fit_on if t.energy_mj is not None]
    if r.energy_mj is not None:
        if with_energy:
            power = fit_power([t.energy_mj for t in with_energy], [t.seconds for t in with_energy])
            predicted = r.instructions * cpi / clock_hz * power * 1e3
            out.append(Point("energy.training", r.run, (r.task,), r.energy_mj, predicted, predicted / r.energy_mj - 1))
        else:
            out.append(Point("energy.training", r.run, (r.task,), r.energy_mj, None, None))
    return out


def cross_validate_map(runs: list[TimedRun], clock_hz: float, hold_out: str = "shape") -> list[Point]:
    """One point per usable run and cost, predicted by a map fitted without its shape ("shape") or without it
    ("run"). A run whose shape is the only one gets no prediction (rel_error None)."""
    if hold_out not in ("shape", "run"):
        raise ValueError(f"hold_out must be 'shape' or 'run', got {hold_out!r}")
    usable = [r for r in runs if not r.flag]
    points: list[Point] = []
    for r in usable:
        fit_on = [t for t in usable if (t.task != r.task if hold_out == "shape" else t is not r)]
        if not fit_on:
            points += [Point(c, r.run, (r.task,), 0.0, None, None) for c in COSTS]
            continue
        points += _held_out(fit_on, r, clock_hz)
    return points
