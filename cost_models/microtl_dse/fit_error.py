"""How wrong the firmware cost models are on shapes they were not fitted on: leave-one-shape-out cross-validation.

A shape is a run's configuration without its sample count and epochs (model, cut, head, batch, classes). For each
shape, the models are refitted on the runs of every other shape and predict the left-out runs; the relative errors
(predicted / measured - 1) give per cost the mean absolute percentage error, the share within +-5% and +-10%, the
worst case, and residual plots.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from cost_models.atomic import replacing
from cost_models.microtl_dse.fit import COSTS, deployed_view, fit_firmware, predict_run
from cost_models.microtl_dse.runs import RunRecord


@dataclass(frozen=True)
class Point:
    cost: str
    key: str
    shape: tuple
    measured: float
    predicted: float | None
    rel_error: float | None


@dataclass(frozen=True)
class CostError:
    cost: str
    n: int  # predictions compared
    missing: int  # runs the refit could not predict (a count the other shapes never exercised)
    mape: float | None  # percent
    within_5: float | None  # share
    within_10: float | None
    worst: float | None  # largest |relative error|


def cross_validate(runs: list[RunRecord], board: str, progress=None) -> list[Point]:
    runs = deployed_view(runs)
    shapes = sorted({r.shape for r in runs}, key=str)
    points: list[Point] = []
    for i, shape in enumerate(shapes):
        train = [r for r in runs if r.shape != shape]
        if not train:
            continue
        cal = fit_firmware(train, board)
        for r in runs:
            if r.shape != shape or r.cost not in COSTS:
                continue
            p = predict_run(cal, r)
            points.append(Point(r.cost, r.key, shape, r.value, p, None if p is None else p / r.value - 1))
        if progress:
            progress(i + 1, len(shapes))
    return points


def in_sample(runs: list[RunRecord], board: str) -> list[Point]:
    runs = deployed_view(runs)
    cal = fit_firmware(runs, board)
    out = []
    for r in runs:
        if r.cost in COSTS:
            p = predict_run(cal, r)
            out.append(Point(r.cost, r.key, r.shape, r.value, p, None if p is None else p / r.value - 1))
    return out


def summarize(points: list[Point], costs: tuple[str, ...] = COSTS) -> list[CostError]:
    out = []
    for cost in costs:
        errs = [abs(p.rel_error) for p in points if p.cost == cost and p.rel_error is not None]
        missing = sum(1 for p in points if p.cost == cost and p.rel_error is None)
        if not errs:
            out.append(CostError(cost, 0, missing, None, None, None, None))
            continue
        out.append(CostError(cost, len(errs), missing, 100 * sum(errs) / len(errs),
                             sum(e <= 0.05 for e in errs) / len(errs), sum(e <= 0.10 for e in errs) / len(errs),
                             max(errs)))
    return out


def error_table(summary: list[CostError], title: str) -> str:
    lines = [title, f"  {'cost':26s} {'n':>4s} {'MAPE %':>8s} {'<=5%':>6s} {'<=10%':>6s} {'worst':>8s}"]
    for e in summary:
        if e.n == 0:
            lines.append(f"  {e.cost:26s} {0:4d}   no predictions ({e.missing} not predictable)")
            continue
        extra = f"  ({e.missing} not predictable)" if e.missing else ""
        lines.append(f"  {e.cost:26s} {e.n:4d} {e.mape:8.3f} {e.within_5:6.0%} {e.within_10:6.0%} "
                     f"{e.worst:+8.2%}{extra}")
    return "\n".join(lines)


def residual_plot(points: list[Point], path: str | Path, title: str, costs: tuple[str, ...] = COSTS) -> Path:
    """Relative error against the measured value, one panel per cost; written atomically."""
    fig = Figure(figsize=(4 * len(costs), 3.4))  # headless: a Figure without pyplot's global state
    axes = fig.subplots(1, len(costs), squeeze=False)
    axes = axes[0]
    for ax, cost in zip(axes, costs):
        pts = [p for p in points if p.cost == cost and p.rel_error is not None]
        ax.scatter([p.measured for p in pts], [100 * p.rel_error for p in pts], s=12)
        ax.axhline(0, color="k", lw=0.6)
        for lim in (5, -5):
            ax.axhline(lim, color="r", lw=0.5, ls="--")
        ax.set_xscale("log" if cost.startswith(("instructions", "cycles_estimate")) else "linear")
        ax.set_title(cost, fontsize=9)
        ax.set_xlabel("measured")
    axes[0].set_ylabel("predicted / measured - 1 (%)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path
