"""Cross-validated error of the emulator map: held-out cycles and energy on synthetic timed runs with known CPI and
power, the two hold-outs, flagged runs, and the shipped map's figures."""
import pytest

from cost_models.microtl_dse.emulator_map import TimedRun, load_emulator_map
from cost_models.microtl_dse.fit_error import summarize
from cost_models.microtl_dse.map_error import costs_of, cross_validate_map, timed_runs_of

COSTS = ("cycles.training", "energy.training")

CLOCK = 64e6


def series(task: str, cpi: float, power_w: float, flag_last: bool = False) -> list[TimedRun]:
    runs = []
    for n in (100, 200, 300):
        instructions = 2.5e6 * n
        seconds = instructions * cpi / CLOCK
        flag = "distrusted" if flag_last and n == 300 else ""
        runs.append(TimedRun(f"{task}-{n}", task, n, instructions, seconds, seconds * power_w * 1e3, flag))
    return runs


def by_cost(points):
    return {c: [p for p in points if p.cost == c] for c in COSTS}


def test_one_cpi_for_every_task_is_predicted_exactly_held_out():
    runs = series("a", 1.6, 0.021) + series("b", 1.6, 0.021)
    for hold_out in ("shape", "run"):
        pts = cross_validate_map(runs, CLOCK, hold_out)
        assert len(pts) == 12 and all(abs(p.rel_error) < 1e-12 for p in pts)


def test_leave_one_shape_out_shows_the_spread_between_tasks():
    """Task b runs at CPI 1.8 where a runs at 1.6: held out by shape, b is predicted with a's CPI (-11.1%) and a
    with b's (+12.5%); held out by run, both tasks' other runs pull the CPI between."""
    runs = series("a", 1.6, 0.021) + series("b", 1.8, 0.024)
    pts = by_cost(cross_validate_map(runs, CLOCK, "shape"))
    cycles = {p.key: p.rel_error for p in pts["cycles.training"]}
    assert cycles["a-100"] == pytest.approx(1.8 / 1.6 - 1) and cycles["b-300"] == pytest.approx(1.6 / 1.8 - 1)
    energy = {p.key: p.rel_error for p in pts["energy.training"]}
    assert energy["b-200"] == pytest.approx(1.6 / 1.8 * 0.021 / 0.024 - 1)  # time x the other task's power
    by_run = {p.key: p.rel_error for p in cross_validate_map(runs, CLOCK, "run") if p.cost == "cycles.training"}
    assert 0 < by_run["a-100"] < 1.8 / 1.6 - 1 and 1.6 / 1.8 - 1 < by_run["b-100"] < 0
    e = {s.cost: s for s in summarize(cross_validate_map(runs, CLOCK, "shape"), COSTS)}
    assert e["cycles.training"].n == 6 and e["cycles.training"].within_10 == 0
    assert e["cycles.training"].mape == pytest.approx(100 * (0.125 + (1 - 1.6 / 1.8)) / 2)


def test_flagged_runs_are_neither_fitted_nor_scored():
    runs = series("a", 1.6, 0.021, flag_last=True) + series("b", 1.6, 0.021)
    bad = runs[2]
    runs[2] = TimedRun(bad.run, bad.task, bad.samples, bad.instructions, bad.seconds * 3, bad.energy_mj, bad.flag)
    pts = cross_validate_map(runs, CLOCK, "run")
    assert "a-300" not in {p.key for p in pts}
    assert all(abs(p.rel_error) < 1e-12 for p in pts)


def test_a_single_shape_cannot_be_held_out_by_shape():
    pts = cross_validate_map(series("a", 1.6, 0.021), CLOCK, "shape")
    assert pts and all(p.predicted is None and p.rel_error is None for p in pts)
    assert summarize(pts, COSTS)[0].n == 0
    with pytest.raises(ValueError, match="hold_out"):
        cross_validate_map([], CLOCK, "task")


def test_shipped_map_error_recomputes_its_residuals():
    """Held out by run, each Table III record's error lies beyond its in-sample residual's (the fit without it)."""
    m = load_emulator_map("nrf52840dk")
    runs = timed_runs_of(m)
    assert len(runs) == len(m.residuals) == 12 and sum(1 for r in runs if r.flag) == 1
    held = {p.key: p.rel_error for p in cross_validate_map(runs, m.clock_hz, "run") if p.cost == "cycles.training"}
    fitted = {r.run: r.rel_error for r in m.residuals if not r.flagged}
    assert held.keys() == fitted.keys()
    assert all(abs(held[k]) >= abs(fitted[k]) - 1e-12 for k in held)
