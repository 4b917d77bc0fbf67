"""Cross-validated error of an emulator map (issue 4, parts 2 and 4): how well emulator instructions x a fitted CPI
predict the real board's cycles, and time x a fitted power its energy, on timed runs the fit did not see.

Per phase, over the runs that phase is fitted on (`emulator_map.fit_set`: our firmware's own timed runs, else
Table III's for training), two hold-outs: leave one shape out, where a shape is a task's series for Table III (the
paper's configuration at one cut and head, only N varies) or a head shape for our own runs, so the CPI and power
come from the other shapes alone; and leave one run out. Pure functions over `TimedRun`s; the report and plots
reuse microtl_dse.fit_error's tables."""
from __future__ import annotations

from cost_models.microtl_dse.emulator_map import TimedRun, fit_cpi, fit_power, fit_set
from cost_models.microtl_dse.fit_error import Point
from vocabulary.phases import PHASES


def timed_runs_of(m) -> list[TimedRun]:
    """The timed runs a stored map was fitted on (its residuals keep them)."""
    return [TimedRun(r.run, r.task, r.samples, r.instructions, r.measured_s, r.energy_mj,
                     r.flag_reason if r.flagged else "", r.phase, r.source) for r in m.residuals]


def costs_of(points: list[Point]) -> tuple[str, ...]:
    """The costs present, phase by phase: cycles.<phase>, energy.<phase>."""
    present = {p.cost for p in points}
    return tuple(f"{m}.{phase}" for phase in PHASES for m in ("cycles", "energy") if f"{m}.{phase}" in present)


def _held_out(fit_on: list[TimedRun], r: TimedRun, clock_hz: float) -> list[Point]:
    cpi = fit_cpi([t.instructions for t in fit_on], [t.seconds for t in fit_on], clock_hz)
    cycles = r.seconds * clock_hz  # the runs' times are of the board at its clock
    out = [Point(f"cycles.{r.phase}", r.run, (r.task,), cycles, r.instructions * cpi,
                 r.instructions * cpi / cycles - 1)]
    with_energy = [t for t in fit_on if t.energy_mj is not None]
    if r.energy_mj is not None:
        if with_energy:
            power = fit_power([t.energy_mj for t in with_energy], [t.seconds for t in with_energy])
            predicted = r.instructions * cpi / clock_hz * power * 1e3
            out.append(Point(f"energy.{r.phase}", r.run, (r.task,), r.energy_mj, predicted,
                             predicted / r.energy_mj - 1))
        else:
            out.append(Point(f"energy.{r.phase}", r.run, (r.task,), r.energy_mj, None, None))
    return out


def cross_validate_map(runs: list[TimedRun], clock_hz: float, hold_out: str = "shape") -> list[Point]:
    """One point per fitted run and cost, predicted by a fit without its shape ("shape") or without it ("run").
    A run whose shape is its phase's only one gets no prediction (rel_error None)."""
    if hold_out not in ("shape", "run"):
        raise ValueError(f"hold_out must be 'shape' or 'run', got {hold_out!r}")
    points: list[Point] = []
    for phase in PHASES:
        pool = fit_set(runs, phase)
        for r in pool:
            fit_on = [t for t in pool if (t.task != r.task if hold_out == "shape" else t is not r)]
            if not fit_on:
                points.append(Point(f"cycles.{phase}", r.run, (r.task,), r.seconds * clock_hz, None, None))
                continue
            points += _held_out(fit_on, r, clock_hz)
    return points
