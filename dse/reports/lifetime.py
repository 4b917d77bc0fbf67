"""Battery lifetime in the reports (`dse predict`'s text: dse/commands/lifetime.py): the summary.md section (days gained
or lost against uploading, per pick) and the stacked daily-energy plot of the picks, both alternatives side by side.
Every figure is a prediction (cost_models.lifetime) and is labelled so."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from cost_models.lifetime import TERMS
from dse import atomic
from dse.commands.lifetime import ALT_LABELS
from dse.reports.modes import has_modes, mode_label, mode_of
from dse.reports.tables import markdown_table

# --- summary.md and the plot --------------------------------------------------------------------------------------

def _has_lifetime(frame: pd.DataFrame) -> bool:
    return len(frame) > 0 and "lifetime.on_device_days" in frame and frame["lifetime.on_device_days"].notna().any()


def summary_lines(spec, chosen: pd.DataFrame) -> list[str]:
    """The `## Battery lifetime` section: per pick, days with each alternative and the difference."""
    d = getattr(spec, "deployment", None)
    if d is None or not _has_lifetime(chosen):
        return []
    sleep = (f"{d.sleep_current_ua:g} uA (study file)" if d.sleep_current_ua is not None
             else "the board file's [sleep] current")
    modes = has_modes(chosen, spec)
    rows = []
    for i, (_, r) in enumerate(chosen.iterrows(), start=1):
        gain = float(r["lifetime.gain_days"])
        rows.append([str(i), str(r["number"]), *([mode_label(r)] if modes else []),
                     f"{float(r['lifetime.on_device_days']):.1f}",
                     f"{float(r['lifetime.ble_days']):.1f}",
                     f"{'gains' if gain >= 0 else 'loses'} {abs(gain):.1f}",
                     f"{float(r['lifetime.adaptation_mj']):.4g}", f"{float(r['lifetime.upload_mj']):.4g}"])
    return [
        "## Battery lifetime (predicted)", "",
        f"{d.battery_mah:g} mAh at {d.battery_v:g} V; {d.inferences_per_hour:g} inferences per hour; "
        f"{d.adaptations_per_month:g} adaptation events per month (each: collect N samples and train on the device - "
        "in streaming mode, each sample trained as it is collected - or upload the N raw samples over BLE and "
        "download the head, as Edge-TL); sleep current: " + sleep + ".",
        "",
        markdown_table(["pick", "trial", *(["mode"] if modes else []), "on-device (days)", "BLE upload (days)",
                        "on-device vs upload (days)",
                        "adaptation event (mJ)", "upload event (mJ)"], rows),
        "",
        "An inference is priced as the evaluation phase of this project's firmware per input (frozen network + "
        "head); an adaptation event as the prediction's phases; the radio at the board file's BLE facts. See "
        "lifetime_breakdown.png for the daily energy breakdown.", "",
    ]


MAX_PICKS = 12  # bars stay readable; the first picks by accuracy, as summary.md lists them


def breakdown_plot(chosen: pd.DataFrame, spec):
    """Top: stacked bars of mJ/day per term, two bars per pick (on device; BLE upload, hatched). Bottom: the
    terms in which the alternatives differ (on-device adaptation vs radio), which are small beside sleep and
    inference at a few events a month."""
    shown = chosen.head(MAX_PICKS)
    n = len(shown)
    fig = Figure(figsize=(max(7.5, 0.9 * n + 3.5), 7.2))
    top, bottom_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    colors = dict(zip(TERMS, sns.color_palette("colorblind", len(TERMS))))
    width = 0.38
    x = list(range(n))
    highest = 0.0
    for offset, (alt, hatch) in zip((-width / 2, width / 2), (("on_device", ""), ("ble", "//"))):
        stack = [0.0] * n
        for term in TERMS:
            values = pd.to_numeric(shown[f"lifetime.{alt}.{term}_mj_per_day"], errors="coerce").fillna(0.0).tolist()
            top.bar([i + offset for i in x], values, width, bottom=stack, color=colors[term], hatch=hatch,
                    edgecolor="white", label=term if alt == "on_device" else None)
            stack = [b + v for b, v in zip(stack, values)]
        highest = max([highest, *stack])
        for i, (total, days) in enumerate(zip(stack, shown[f"lifetime.{alt}_days"])):
            top.text(i + offset, total, f"{float(days):.0f}", ha="center", va="bottom", fontsize=6, rotation=90)
        term = "adaptation" if alt == "on_device" else "radio"
        values = pd.to_numeric(shown[f"lifetime.{alt}.{term}_mj_per_day"], errors="coerce").fillna(0.0).tolist()
        bottom_ax.bar([i + offset for i in x], values, width, color=colors[term], hatch=hatch, edgecolor="white",
                      label=f"{term} ({ALT_LABELS[alt]})")
    top.set_ylim(0, 1.15 * highest if highest > 0 else 1)
    top.legend(fontsize=7, title="daily energy term (left bar: on device;\nright, hatched: BLE upload); "
                                 "labels: predicted days", title_fontsize=7, loc="lower right")
    top.set_ylabel("predicted energy per day (mJ)")
    more = f" (first {MAX_PICKS} of {len(chosen)})" if len(chosen) > n else ""
    top.set_title(f"{spec.name}: predicted daily energy of the picks{more}, on-device vs BLE upload")
    top.grid(alpha=0.3, axis="y")
    bottom_ax.legend(fontsize=7, loc="upper right")
    bottom_ax.set_ylabel("where they differ (mJ/day)")
    bottom_ax.grid(alpha=0.3, axis="y")
    labels = [f"#{int(r['number'])} {r['cut']}\nh{r['hidden']} n{r['samples']}"
              + (f"\n{mode_label(r, short=True)}" if mode_of(r) == "streaming" else "") for _, r in shown.iterrows()]
    bottom_ax.set_xticks(x, labels, fontsize=7)
    bottom_ax.set_xlabel("Pareto pick (trial, cut, hidden units, samples), best accuracy first")
    fig.tight_layout()
    return fig


def write_plot(table: pd.DataFrame, spec, out: Path, chosen: pd.DataFrame) -> list[Path]:
    """lifetime_breakdown.png when the study has a deployment and its picks a lifetime; else nothing."""
    if getattr(spec, "deployment", None) is None or not _has_lifetime(chosen):
        return []
    atomic.save_figure(breakdown_plot(chosen, spec), out / "lifetime_breakdown.png")
    return [out / "lifetime_breakdown.png"]
