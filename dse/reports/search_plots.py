"""Plots of how the search went (headless matplotlib Figures): hypervolume of the feasible Pareto front over the
trials, parameter importance per objective, and parallel coordinates of every complete trial.

The hypervolume is computed in objective space normalized to [0, 1] per objective over the complete trials (all
turned into minimization; reference point 1.1 in each), so that KB, mJ and % weigh alike and the curve of one
study is comparable from run to run. Importance is Optuna's fANOVA (optuna.importance), one bar group per
objective; it needs at least two complete trials and one varying parameter.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import optuna
import pandas as pd  # noqa: E402
from matplotlib import colormaps
from matplotlib.figure import Figure  # noqa: E402
from optuna.trial import TrialState

from dse.reports.hypervolume import hypervolume  # noqa: E402
from dse.study.file import StudySpec  # noqa: E402
from models.zoo import get_model

REFERENCE = 1.1  # normalized reference point per objective
PARAM_ORDER = ("cut", "hidden", "samples", "epochs", "batch", "lr", "momentum", "decay", "patience")


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _minimized(table: pd.DataFrame, spec: StudySpec) -> np.ndarray:
    """Objective values of the rows, each turned into a minimized one (accuracy negated)."""
    cols = []
    for o in spec.objectives:
        v = pd.to_numeric(table[o.measure.column], errors="coerce").to_numpy(dtype=float)
        cols.append(-v if o.direction == "maximize" else v)
    return np.column_stack(cols) if cols else np.zeros((len(table), 0))


def hypervolume_history(table: pd.DataFrame, spec: StudySpec) -> tuple[list[int], list[float]]:
    """(trial number, hypervolume of the feasible complete trials up to it), normalized space (see module doc)."""
    if not len(table):
        return [], []
    done = table[(table["state"] == "COMPLETE")].sort_values("number")
    values = _minimized(done, spec)
    ok = np.all(np.isfinite(values), axis=1)
    done, values = done[ok], values[ok]
    if not len(done) or not 1 <= values.shape[1] <= 3:
        return [], []
    lo, hi = values.min(axis=0), values.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    norm = (values - lo) / span
    feasible = (done["feasible"] == True).to_numpy()  # noqa: E712
    numbers, volumes = [], []
    for k in range(len(done)):
        pts = norm[: k + 1][feasible[: k + 1]]
        numbers.append(int(done["number"].iloc[k]))
        volumes.append(hypervolume(pts, [REFERENCE] * norm.shape[1]) if len(pts) else 0.0)
    return numbers, volumes


def hypervolume_plot(table: pd.DataFrame, spec: StudySpec) -> Figure:
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    numbers, volumes = hypervolume_history(table, spec)
    if not numbers:
        _empty(ax, "no complete trials yet" if len(spec.objectives) <= 3 else "hypervolume: 1 to 3 objectives")
    else:
        ax.step(numbers, volumes, where="post", color="C0")
        ax.plot(numbers, volumes, "o", ms=3, color="C0")
        ax.set_ylim(0, REFERENCE ** len(spec.objectives) * 1.02)
    names = ", ".join(f"{o.direction} {o.name}" for o in spec.objectives)
    ax.set_xlabel("trial number")
    ax.set_ylabel(f"hypervolume (normalized, reference {REFERENCE:g})")
    ax.set_title(f"{spec.name}: hypervolume of the feasible Pareto front\n({names})", fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def importances(study, spec: StudySpec) -> dict[str, dict[str, float]]:
    """objective name -> {parameter: importance} (Optuna fANOVA, seeded); {} when it cannot be computed."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    varying = {k for t in done for k in t.params if len({repr(u.params.get(k)) for u in done}) > 1}
    if len(done) < 2 or not varying:
        return {}
    out = {}
    for i, o in enumerate(spec.objectives):
        if len({t.values[i] for t in done}) < 2:  # a constant objective: fANOVA has no variance to share out
            continue
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        try:
            out[o.name] = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                                  target=lambda t, i=i: t.values[i])
        except RuntimeError:  # "zero total variance in all trees": the varying parameters explain nothing
            continue
    return out


def importance_plot(study, spec: StudySpec) -> Figure:
    values = importances(study, spec) if study is not None else {}
    params = sorted({p for v in values.values() for p in v},
                    key=lambda p: PARAM_ORDER.index(p) if p in PARAM_ORDER else len(PARAM_ORDER))
    fig = Figure(figsize=(max(6.4, 1.1 * len(params) + 2), 4.2))
    ax = fig.add_subplot()
    if not params:
        _empty(ax, "needs >= 2 complete trials and a varying parameter")
    else:
        width = 0.8 / len(values)
        for k, (objective, imp) in enumerate(values.items()):
            xs = np.arange(len(params)) + (k - (len(values) - 1) / 2) * width
            ax.bar(xs, [imp.get(p, 0.0) for p in params], width, label=objective, color=f"C{k}")
        ax.set_xticks(range(len(params)), params)
        ax.legend(title="objective", fontsize=8)
        ax.set_ylim(0, 1)
    ax.set_ylabel("importance (fANOVA, share of the variance)")
    ax.set_title(f"{spec.name}: parameter importance per objective", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return fig


def parallel_plot(table: pd.DataFrame, spec: StudySpec) -> Figure:
    """One line per complete trial across the varying parameters and the objectives, each axis scaled to its
    own range (cut points in the model's order); coloured by accuracy, Pareto picks drawn thick and black."""
    done = table[table["state"] == "COMPLETE"] if len(table) else table
    axes: list[tuple[str, np.ndarray, list[str] | None]] = []
    for p in PARAM_ORDER:
        if p in done and done[p].nunique(dropna=True) > 1:
            if p == "cut":
                order = [c for c in get_model(spec.model).cut_points() if c in set(done["cut"])]
                axes.append((p, done["cut"].map({c: i for i, c in enumerate(order)}).to_numpy(float), order))
            else:
                axes.append((p, pd.to_numeric(done[p], errors="coerce").to_numpy(float), None))
    for o in spec.objectives:
        axes.append((o.measure.label, pd.to_numeric(done[o.measure.column], errors="coerce").to_numpy(float)
                     / o.measure.scale, None))
    fig = Figure(figsize=(max(7.0, 1.3 * len(axes) + 1), 4.6))
    ax = fig.add_subplot()
    if not len(done) or len(axes) < 2:
        _empty(ax, "no complete trials yet")
        return fig
    norm = []
    for name, v, labels in axes:
        lo, hi = np.nanmin(v), np.nanmax(v)
        norm.append((v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5))
    y = np.column_stack(norm)
    acc = pd.to_numeric(done["accuracy_mean"], errors="coerce").to_numpy(float)
    cmap = colormaps["viridis"]
    a_lo, a_hi = np.nanmin(acc), np.nanmax(acc)
    pareto = (done["pareto"] == True).to_numpy()  # noqa: E712
    xs = np.arange(len(axes))
    for row, a, pick in sorted(zip(y, acc, pareto), key=lambda r: r[2]):
        color = "black" if pick else cmap((a - a_lo) / (a_hi - a_lo) if a_hi > a_lo else 0.5)
        ax.plot(xs, row, color=color, lw=1.8 if pick else 0.8, alpha=0.95 if pick else 0.5)
    for i, (name, v, labels) in enumerate(axes):
        ax.axvline(i, color="0.3", lw=0.6)
        if labels:
            for k, label in enumerate(labels):
                ax.text(i, k / max(1, len(labels) - 1), f" {label}", fontsize=6.5, va="center")
        else:
            lo, hi = np.nanmin(v), np.nanmax(v)
            ax.text(i, -0.04, f"{lo:.3g}", fontsize=6.5, ha="center", va="top")
            ax.text(i, 1.04, f"{hi:.3g}", fontsize=6.5, ha="center", va="bottom")
    ax.set_xticks(xs, [a[0] for a in axes], fontsize=7, rotation=15)
    ax.set_yticks([])
    ax.set_ylim(-0.12, 1.12)
    sm = matplotlib.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(100 * a_lo, 100 * a_hi))
    fig.colorbar(sm, ax=ax, label="simulated accuracy (%)  (black: Pareto pick)", fraction=0.04)
    ax.set_title(f"{spec.name}: parallel coordinates of the complete trials (each axis: its own range)", fontsize=9)
    return fig
