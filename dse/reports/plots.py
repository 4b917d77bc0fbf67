"""PNG plots of a study (headless: matplotlib Figure objects, no pyplot state): the Pareto front for each pair of
objectives, accuracy against sample count per cut point, and the RAM breakdown of the picks."""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dse import atomic  # noqa: E402
from dse.reports.lifetime import write_plot as write_lifetime_plot
from dse.reports.modes import MARKERS, has_modes, mode_label, mode_of  # noqa: E402
from dse.reports.search_plots import hypervolume_plot, importance_plot, parallel_plot
from dse.reports.trials import picks  # noqa: E402
from dse.reports.validation_plot import validation_plot
from dse.study.file import StudySpec  # noqa: E402
from dse.study.objectives import Measure  # noqa: E402
from models.zoo import get_model  # noqa: E402


def _complete(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["state"] == "COMPLETE"] if len(table) else table


def _cut_order(table: pd.DataFrame, spec: StudySpec) -> list[str]:
    order = get_model(spec.model).cut_points()
    present = set(table["cut"].dropna()) if len(table) else set()
    return [c for c in order if c in present]


def _values(frame: pd.DataFrame, m: Measure) -> pd.Series:
    return pd.to_numeric(frame[m.column], errors="coerce") / m.scale if m.column in frame else pd.Series(dtype=float)


def _empty(ax, text: str = "no complete trials yet") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def pareto_plot(table: pd.DataFrame, spec: StudySpec, a: Measure, b: Measure) -> Figure:
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.add_subplot()
    done = _complete(table)
    if not len(done):
        _empty(ax)
    else:
        cuts = _cut_order(done, spec)
        palette = dict(zip(cuts, sns.color_palette("colorblind", len(cuts))))
        feasible = done[done["feasible"] == True]  # noqa: E712
        infeasible = done[done["feasible"] != True]  # noqa: E712
        if len(infeasible):
            ax.scatter(_values(infeasible, a), _values(infeasible, b), marker="x", color="0.6", s=28,
                       label="infeasible (violates a constraint)", zorder=1)
        modes = has_modes(table, spec)
        for cut in cuts:
            for mode, marker in MARKERS.items():
                part = feasible[(feasible["cut"] == cut) & (feasible.apply(mode_of, axis=1) == mode)]
                if len(part):
                    ax.scatter(_values(part, a), _values(part, b), color=palette[cut], s=30, alpha=0.75,
                               marker=marker, label=f"cut {cut}" + (f", {mode}" if modes else ""), zorder=2)
        front = done[done["pareto"] == True]  # noqa: E712
        for mode, marker in MARKERS.items():
            part = front[front.apply(mode_of, axis=1) == mode] if len(front) else front
            if len(part):
                ax.scatter(_values(part, a), _values(part, b), facecolors="none", edgecolors="black", s=110,
                           marker=marker, linewidths=1.4,
                           label="Pareto pick (feasible)" + (f", {mode}" if modes else ""), zorder=3)
            if len(spec.objectives) == 2:
                line = pd.DataFrame({"x": _values(front, a), "y": _values(front, b)}).sort_values("x")
                ax.step(line["x"], line["y"], where="post", color="black", lw=0.8, zorder=2)
        ax.legend(fontsize=8, loc="best")
    ax.set_xlabel(a.label)
    ax.set_ylabel(b.label)
    ax.set_title(f"{spec.name}: {a.name} vs {b.name}")
    ax.grid(alpha=0.3)
    return fig


def accuracy_plot(table: pd.DataFrame, spec: StudySpec) -> Figure:
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.add_subplot()
    done = _complete(table)
    if not len(done):
        _empty(ax)
    else:
        cuts = _cut_order(done, spec)
        palette = dict(zip(cuts, sns.color_palette("colorblind", len(cuts))))
        modes = has_modes(table, spec)
        for cut in cuts:
            for mode, marker in MARKERS.items():
                part = done[(done["cut"] == cut) & (done.apply(mode_of, axis=1) == mode)].sort_values("samples")
                if not len(part):
                    continue
                mean = 100 * part["accuracy_mean"].astype(float).to_numpy()
                std = 100 * part["accuracy_std"].astype(float).fillna(0.0).to_numpy()
                # mean ± std clipped to [0, 100]: an accuracy band never leaves the possible range
                band = [np.minimum(std, mean), np.minimum(std, 100.0 - mean)]
                ax.errorbar(part["samples"].astype(float), mean, yerr=band, fmt=marker, ms=4, capsize=2, alpha=0.8,
                            color=palette[cut], label=f"cut {cut}" + (f", {mode}" if modes else ""))
        ax.legend(title="cut point" + (", mode (marker)" if modes else ""), fontsize=8)
    ax.set_xlabel("samples (labelled by the user)")
    ax.set_ylabel(f"simulated accuracy (%), mean ± std of {spec.repeats} (clipped to 0-100)")
    ax.set_ylim(top=100.5)
    ax.set_title(f"{spec.name}: accuracy against sample count")
    ax.grid(alpha=0.3)
    return fig


def _pick_labels(chosen: pd.DataFrame) -> list[str]:
    """Trial, cut, head and samples; streaming picks add their ring ("stream K8")."""
    return [f"#{int(r['number'])}\n{r['cut']}\nh{r['hidden']} n{r['samples']}"
            + (f"\n{mode_label(r, short=True)}" if mode_of(r) == "streaming" else "") for _, r in chosen.iterrows()]


def _stacked(ax, chosen: pd.DataFrame, columns: list[str], scale: float, prefix: str, legend: str) -> None:
    """Stacked bars per pick of the non-zero columns (value / scale), legend beside the axes."""
    values = chosen[columns].apply(pd.to_numeric, errors="coerce").fillna(0.0) / scale
    values = values.loc[:, (values != 0).any(axis=0)]
    colors = sns.color_palette("tab20", max(1, values.shape[1]))
    bottom = np.zeros(len(chosen))
    for color, column in zip(colors, values.columns):
        ax.bar(range(len(chosen)), values[column].to_numpy(), bottom=bottom, color=color,
               label=column.removeprefix(prefix))
        bottom += values[column].to_numpy()
    ax.set_xticks(range(len(chosen)), _pick_labels(chosen), fontsize=7)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left", title=legend)
    ax.set_xlim(-0.8, max(len(chosen), 3) - 0.2)


def flash_breakdown_plot(table: pd.DataFrame, spec: StudySpec) -> Figure:
    chosen = picks(table, spec, unique=True) if len(table) else table
    fig = Figure(figsize=(max(6.4, 0.8 * len(chosen) + 3), 4.8))
    ax = fig.add_subplot()
    terms = [c for c in table.columns if c.startswith("predicted.flash.")] if len(table) else []
    if not len(chosen) or not terms:
        _empty(ax, "no feasible Pareto pick yet")
    else:
        _stacked(ax, chosen, terms, 1024.0, "predicted.flash.", "predicted flash term")
        limits = [c for c in spec.constraints if c.measure.name == "flash" and c.upper]
        if limits:
            tightest = min(limits, key=lambda c: c.limit * c.unit_scale)
            limit = tightest.limit * tightest.unit_scale / 1024
            top = pd.to_numeric(chosen["predicted.flash_total"], errors="coerce").max() / 1024
            if limit <= 3 * top:
                ax.axhline(limit, color="red", lw=0.8, ls="--")
                ax.text(-0.7, limit, f"flash limit {limit:g} KB ({tightest.key})", color="red", va="bottom",
                        fontsize=7)
            else:  # a line at 1 MB would flatten every bar
                ax.text(0.01, 0.98, f"flash limit {limit:g} KB ({tightest.key}): off this scale", color="red",
                        va="top", fontsize=7, transform=ax.transAxes)
    ax.set_xlabel("Pareto pick (trial, cut, hidden units, samples)")
    ax.set_ylabel("predicted flash (KB)")
    ax.set_title(f"{spec.name}: predicted flash breakdown of the picks")
    ax.grid(alpha=0.3, axis="y")
    return fig


def phase_plot(table: pd.DataFrame, spec: StudySpec) -> Figure:
    """Predicted time and energy of each pick, stacked by phase (collection, training, evaluation)."""
    chosen = picks(table, spec, unique=True) if len(table) else table
    fig = Figure(figsize=(max(6.4, 0.8 * len(chosen) + 3), 8.4))
    axes = fig.subplots(2, 1)
    for ax, kind, unit, label in ((axes[0], "time", "_s", "predicted time (s)"),
                                  (axes[1], "energy", "_mj", "predicted energy (mJ)")):
        columns = [c for c in table.columns if c.startswith(f"predicted.{kind}.") and c.endswith(unit)] \
            if len(table) else []
        if not len(chosen) or not columns:
            _empty(ax, "no feasible Pareto pick yet" if not len(chosen) else f"no {kind} predicted on this board")
        else:
            _stacked(ax, chosen, columns, 1.0, f"predicted.{kind}.", "phase")
            for text in ax.get_legend().get_texts():
                text.set_text(text.get_text().removesuffix(unit))
        ax.set_ylabel(label)
        ax.set_xlabel("Pareto pick (trial, cut, hidden units, samples)")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{spec.name}: predicted time and energy per phase of the picks", fontsize=10)
    fig.subplots_adjust(hspace=0.45, top=0.94)
    return fig


def ram_breakdown_plot(table: pd.DataFrame, spec: StudySpec) -> Figure:
    chosen = picks(table, spec, unique=True) if len(table) else table
    fig = Figure(figsize=(max(6.4, 0.8 * len(chosen) + 3), 4.8))
    ax = fig.add_subplot()
    terms = [c for c in table.columns if c.startswith("predicted.ram.")] if len(table) else []
    if not len(chosen) or not terms:
        _empty(ax, "no feasible Pareto pick yet")
    else:
        kb = chosen[terms].apply(pd.to_numeric, errors="coerce").fillna(0.0) / 1024.0
        kb = kb.loc[:, (kb != 0).any(axis=0)]
        labels = _pick_labels(chosen)
        colors = sns.color_palette("tab20", max(1, kb.shape[1]))
        bottom = [0.0] * len(chosen)
        for color, term in zip(colors, kb.columns):
            ax.bar(range(len(chosen)), kb[term].to_numpy(), bottom=bottom, color=color,
                   label=term.removeprefix("predicted.ram."))
            bottom = [x + y for x, y in zip(bottom, kb[term].to_numpy())]
        ax.set_xticks(range(len(chosen)), labels, fontsize=7)
        ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left", title="predicted RAM term")
        ax.set_xlim(-0.8, max(len(chosen), 3) - 0.2)
        ram_limits = [c for c in spec.constraints if c.measure.name == "ram" and c.upper]
        if ram_limits:  # the tightest RAM limit: the study's budget or the board's memory
            tightest = min(ram_limits, key=lambda c: c.limit * c.unit_scale)
            limit = tightest.limit * tightest.unit_scale / 1024
            ax.axhline(limit, color="red", lw=0.8, ls="--")
            ax.text(-0.7, limit, f"RAM limit {limit:g} KB ({tightest.key})", color="red", va="bottom", fontsize=7)
    ax.set_xlabel("Pareto pick (trial, cut, hidden units, samples)")
    ax.set_ylabel("predicted RAM (KB)")
    ax.set_title(f"{spec.name}: predicted RAM breakdown of the picks")
    ax.grid(alpha=0.3, axis="y")
    return fig


def write_plots(table: pd.DataFrame, spec: StudySpec, out: str | Path, study=None) -> list[Path]:
    """Every plot of the study into `out`; parameter importance needs the Optuna `study`, and the predicted vs
    measured plot is written when the folder holds validation records."""
    out = Path(out)
    figures: list[tuple[str, Figure]] = []
    for a, b in combinations([o.measure for o in spec.objectives], 2):
        figures.append((f"pareto_{a.name}_{b.name}.png", pareto_plot(table, spec, a, b)))
    figures.append(("accuracy_vs_samples.png", accuracy_plot(table, spec)))
    figures.append(("ram_breakdown.png", ram_breakdown_plot(table, spec)))
    figures.append(("flash_breakdown.png", flash_breakdown_plot(table, spec)))
    figures.append(("phases.png", phase_plot(table, spec)))
    figures.append(("hypervolume.png", hypervolume_plot(table, spec)))
    figures.append(("parallel_coordinates.png", parallel_plot(table, spec)))
    if study is not None:
        figures.append(("param_importance.png", importance_plot(study, spec)))
    validated = validation_plot(out, spec)
    if validated is not None:
        figures.append(("predicted_vs_measured.png", validated))
    written = []
    for name, fig in figures:
        atomic.save_figure(fig, out / name)
        written.append(out / name)
    written += write_lifetime_plot(table, spec, out, picks(table, spec, unique=True) if len(table) else table)
    return written
