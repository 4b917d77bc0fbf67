"""Reports of a study, rebuilt from its storage alone (so `dse report DIR` can redo them): trials.csv,
pareto.csv, summary.md and the plots. Cost figures are predictions and are labelled so."""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd

from dse import atomic
from dse.reports.lifetime import summary_lines as lifetime_lines
from dse.reports.modes import has_modes
from dse.reports.modes import summary_lines as mode_lines
from dse.reports.plots import write_plots
from dse.reports.tables import markdown_table
from dse.reports.trials import pick_rows, picks, trial_table
from dse.study.file import StudySpec
from dse.study.trial_attrs import ATTR_NOTES, ATTR_PHASES
from models.data import data_source


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def summary_markdown(study: optuna.Study, spec: StudySpec, table: pd.DataFrame, plots: list[str]) -> str:
    states = Counter(table["state"]) if len(table) else Counter()
    feasible = int((table["feasible"] == True).sum()) if len(table) else 0  # noqa: E712
    chosen = picks(table, spec, unique=True)
    repeated = len(picks(table, spec)) - len(chosen)
    lines = [f"# Study {spec.name}", ""]
    if spec.description:
        lines += [spec.description.strip(), ""]
    population = f" (population {spec.population})" if spec.sampler == "nsga2" else ""
    lines += [
        f"- task: {spec.task.name} (data: {data_source(spec.task.name, spec.task.data)})"
        + f"; model: {spec.model} ({spec.scheme}); board: {spec.board}",
        f"- sampler: {spec.sampler}{population}, seed {spec.seed}; accuracy: mean of {spec.repeats} simulated "
        "runs (sample draws) per trial",
        f"- trials: {len(table)} ({states.get('COMPLETE', 0)} complete, {feasible} feasible, "
        f"{states.get('FAIL', 0)} failed); study file target {spec.trials}",
        "",
        "## Space",
        "",
        markdown_table(["parameter", "values"], [[k, d.describe()] for k, d in spec.space.params.items()]),
        "",
        "## Objectives",
        "",
        *[f"- {o.direction} {o.measure.label}" for o in spec.objectives],
        "",
        "## Constraints",
        "",
    ]
    for c in spec.constraints:
        op = "<=" if c.upper else ">="
        lines.append(f"- {c.key}: {c.measure.label} {op} {c.measure.display(c.limit * c.unit_scale):g}")
    if not spec.constraints:
        lines.append("- none")
    lines += ["", "## Picks (feasible Pareto-optimal trials)", ""]
    if len(chosen):
        headers, rows = pick_rows(chosen, modes=has_modes(table, spec))
        lines += [markdown_table(headers, rows), ""]
        if repeated:
            lines += [f"{repeated} more Pareto trial(s) repeat a configuration listed here (see pareto.csv).", ""]
        lines += ["Accuracy is simulated (mean ± std over the repeats); RAM, flash, latency and energy are "
                  "predictions of the cost models for the epochs early stopping ran."]
    else:
        lines.append("No feasible complete trial yet.")
    lines += ["", *mode_lines(spec, table, chosen)] if len(chosen) and has_modes(table, spec) else []
    lines += ["", *lifetime_lines(spec, chosen)] if len(chosen) else []
    notes, phases = Counter(), Counter()
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number in chosen["number"] if len(chosen) else []:
        trial = by_number[int(number)]
        notes.update(dict.fromkeys(trial.user_attrs.get(ATTR_NOTES, []), 1))
        phases.update(dict.fromkeys([", ".join(trial.user_attrs.get(ATTR_PHASES, []))], 1))
    lines += ["", "## Notes from the predictions", ""]
    for text, n in phases.items():
        if text:
            lines.append(f"- phases included: {text} ({n} of {len(chosen)} picks)")
    for text, n in notes.items():
        lines.append(f"- {text} ({n} of {len(chosen)} picks)")
    if not notes and not any(phases):
        lines.append("- none")
    failed = [r for _, r in table.iterrows() if r["state"] == "FAIL"]
    if failed:
        reasons = Counter(str(r["fail_reason"]) or "?" for r in failed)
        lines += ["", "## Failed trials", ""]
        lines += [f"- {reason} ({n} trial{'s' if n > 1 else ''})" for reason, n in reasons.most_common()]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def write_reports(study: optuna.Study, spec: StudySpec, out: str | Path) -> list[Path]:
    """trials.csv, pareto.csv, the plots and summary.md in folder `out`, each written atomically."""
    out = Path(out)
    table = trial_table(study, spec)
    written = []
    atomic.write_text(out / "trials.csv", _csv(table))
    atomic.write_text(out / "pareto.csv", _csv(picks(table, spec)))
    written += [out / "trials.csv", out / "pareto.csv"]
    plots = write_plots(table, spec, out, study)
    atomic.write_text(out / "summary.md", summary_markdown(study, spec, table, [p.name for p in plots]))
    return written + plots + [out / "summary.md"]
