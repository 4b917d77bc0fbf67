"""The figure of `dse rescore`: old and new Pareto fronts, one panel per cost objective, on the axes of the study's
own Pareto plots (simulated accuracy on x, the predicted cost on y).

Every trial is drawn twice, at its old prediction (grey) and its new one (colour; infeasible after rescoring: a
cross); the study's picks before (black rings, at their old cost) and after (red rings, at their new cost) are joined
by an arrow from old to new; the two-objective fronts of the feasible trials are drawn as steps. Headless
(matplotlib Figure, no pyplot state).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from dse.study.objectives import COSTS, MEASURES  # noqa: E402


def _front(points):
    """(accuracy, cost) points on the accuracy-max / cost-min front, sorted by accuracy."""
    out = []
    for a, c in sorted(points, key=lambda p: (p[1], -p[0])):
        if not out or a > out[-1][0]:
            out.append((a, c))
    return sorted(out)


def _step(ax, pts, **kw):
    """The front as the study plots draw it: steps over accuracy."""
    if pts:
        ax.step([p[0] for p in pts], [p[1] for p in pts], where="post", **kw)


def rescore_figure(spec, result: dict, panels: list[str], constraints) -> Figure:
    fig = Figure(figsize=(6.2 * len(panels), 5.4))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    trials = {int(n): r for n, r in result["trials"].items() if "error" not in r and r["accuracy"] is not None}
    old_picks, new_picks = set(result["old_picks"]), set(result["new_picks"])
    for ax, m in zip(axes, panels):
        measure, key = MEASURES[m], COSTS[m]
        scale = measure.scale
        pts = {n: (r["old"][key], r["new"][key], 100 * r["accuracy"], r["old_feasible"], r["new_feasible"])
               for n, r in trials.items()}
        old_ok = [(a, o / scale) for o, _, a, f, _ in pts.values() if o is not None and f]
        old_bad = [(a, o / scale) for o, _, a, f, _ in pts.values() if o is not None and not f]
        new_ok = [(a, x / scale) for _, x, a, _, f in pts.values() if x is not None and f]
        new_bad = [(a, x / scale) for _, x, a, _, f in pts.values() if x is not None and not f]
        for group, style in ((old_ok, {"s": 9, "c": "0.72", "label": "trial, old prediction"}),
                             (old_bad, {"s": 12, "c": "0.72", "marker": "x", "lw": 0.8,
                                        "label": "trial, old prediction, infeasible"}),
                             (new_ok, {"s": 11, "c": "C0", "alpha": 0.6, "label": "trial, rescored"}),
                             (new_bad, {"s": 16, "c": "C3", "marker": "x", "lw": 0.9,
                                        "label": "trial, rescored, infeasible"})):
            if group:
                ax.scatter(*zip(*group), **style)
        _step(ax, _front(old_ok), c="k", ls="--", lw=0.9, label="old front (accuracy vs the panel's cost, feasible)")
        _step(ax, _front(new_ok), c="C3", lw=1.1, label="new front (accuracy vs the panel's cost, feasible)")
        for n in sorted(old_picks | new_picks):
            o, x, a, _, f = pts[n]
            if o is not None and x is not None and o != x:
                ax.annotate("", (a, x / scale), (a, o / scale),
                            arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 0.6, "shrinkA": 0, "shrinkB": 2})
        old_p = [(pts[n][2], pts[n][0] / scale) for n in old_picks if pts[n][0] is not None]
        new_p = [(pts[n][2], pts[n][1] / scale) for n in new_picks if pts[n][1] is not None]
        lost = [(pts[n][2], pts[n][1] / scale) for n in old_picks if not pts[n][4] and pts[n][1] is not None]
        if old_p:
            ax.scatter(*zip(*old_p), s=70, facecolors="none", edgecolors="k", lw=1.1, label="old pick (old cost)")
        if new_p:
            ax.scatter(*zip(*new_p), s=95, facecolors="none", edgecolors="C3", lw=1.3, label="new pick (new cost)")
        if lost:
            ax.scatter(*zip(*lost), s=90, c="C3", marker="X", label="old pick, infeasible after rescoring")
        for c in constraints:
            if c.measure.name == m and c.upper and not c.key.startswith("board_"):
                y = c.limit * c.unit_scale / scale
                ax.axhline(y, c="C3", ls=":", lw=0.9)
                ax.text(0.01, y, f" {c.describe()}", color="C3", fontsize=7, va="bottom", ha="left",
                        transform=ax.get_yaxis_transform())
        ys = [p[1] for p in old_ok + old_bad + new_ok + new_bad if p[1] > 0]
        if ys and max(ys) / min(ys) > 50:
            ax.set_yscale("log")
        ax.set_xlabel("simulated accuracy (%)")
        ax.set_ylabel(measure.label)
        ax.grid(alpha=0.3)
    handles = {}
    for ax in axes:  # one legend for all panels, below them
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=5, fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 0.06))
    cal = result["calibration"]
    old_fw = ", ".join(f"{k} ({v} trials)" for k, v in result["old_firmware"].items())
    fig.suptitle(f"{result['study']}: Pareto front before and after rescoring on {result['board']} "
                 f"(all costs predicted)", fontsize=10)
    how = f"{cal['board']} firmware calibration {cal['sha256'][:12]} ({', '.join(cal['files'])}, {cal['runs']} runs)"
    if result.get("emulator_map"):
        t = result["emulator_map"]["phases"]["training"]
        how += (f" -> {result['board']} emulator map: time = instructions x CPI {t['cpi']:.3f} ({t['cpi_status']}, "
                f"Table III) / clock, energy = time x phase power ({t['power_status']} {1e3 * t['power_w']:.2f} mW "
                "training)")
    fig.text(0.01, 0.005, f"old: the study's predictions, firmware model {old_fw}\nnew: our firmware's model "
             f"(\"microtl-dse\"), {how}", fontsize=6.5, va="bottom")
    fig.subplots_adjust(bottom=0.27, top=0.92, wspace=0.22)
    return fig
