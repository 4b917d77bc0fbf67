"""Reports of a study, rebuilt from its storage alone (so `dse report DIR` can redo them): trials.csv,
pareto.csv, summary.md and the plots. Cost figures are predictions and are labelled so."""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd

from models.data import data_source

from . import atomic
from .studyfile import StudySpec
from .tables import markdown_table, sig
from .trial_run import ATTR_NOTES, ATTR_PHASES
from .trials import CONFIG_COLUMNS, picks, trial_table


def _get(row, key):
    value = row.get(key)
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def _num(value, fmt: str, scale: float = 1.0) -> str:
    return "" if value is None else format(value / scale, fmt)


def _yes_no(value) -> str:
    """A boolean cell (studies from before restore_best existed have none: they restored the best weights)."""
    return "yes" if value is None or bool(value) else "no"


def pick_rows(chosen: pd.DataFrame, short: bool = False, modes: bool = False) -> tuple[list[str], list[list[str]]]:
    """The picks as a table: configuration, accuracy mean±std, predicted costs in KB, s and mJ (`short`: "pred."
    in the headers, so that a terminal table wraps them into narrow columns). With `modes` (a study exploring the
    training mode): the mode with its replay ring, and the predicted latency per collected sample of streaming
    rows (collection + training of one sample; stored rows collect first and train once: blank)."""
    from .modes import mode_label, sample_latency_s

    pred = "pred." if short else "predicted"
    headers = ["pick", "trial", "cut", "hidden", "samples", "epochs", "batch", "lr", "momentum", "restore best",
               *(["mode"] if modes else []), "accuracy (%)",
               f"{pred} RAM (KB)", f"{pred} flash (KB)", f"{pred} latency (s)", f"{pred} energy (mJ)",
               *([f"{pred} latency per sample (ms)"] if modes else [])]
    rows = []
    for i, (_, row) in enumerate(chosen.iterrows(), start=1):
        mean, std = _get(row, "accuracy_mean"), _get(row, "accuracy_std")
        per_sample = sample_latency_s(row) if modes else None
        rows.append([
            str(i), str(row["number"]), str(row["cut"]), str(row["hidden"]), str(row["samples"]), str(row["epochs"]),
            str(row["batch"]), _num(_get(row, "lr"), ".3g"), _num(_get(row, "momentum"), ".3g"),
            _yes_no(_get(row, "restore_best")), *([mode_label(row)] if modes else []),
            "" if mean is None else f"{100 * mean:.1f} ± {100 * (std or 0):.1f}",
            _sig(_get(row, "predicted.ram_total"), 1024), _sig(_get(row, "predicted.flash_total"), 1024),
            _sig(_get(row, "predicted.latency_s")), _sig(_get(row, "predicted.energy_mj")),
            *([_sig(None if per_sample is None else 1e3 * per_sample)] if modes else []),
        ])
    return headers, rows


def _sig(value, scale: float = 1.0) -> str:
    return "" if value is None else sig(float(value) / scale)


def pick_records(chosen: pd.DataFrame) -> list[dict]:
    """The picks as plain data (for --json): trial, configuration, simulated accuracy, every predicted figure."""
    from .modes import sample_latency_s

    out = []
    for i, (_, row) in enumerate(chosen.iterrows(), start=1):
        record = {"pick": i, "trial": int(row["number"]),
                  "configuration": {c: _plain(_get(row, c)) for c in CONFIG_COLUMNS},
                  "accuracy_mean": _plain(_get(row, "accuracy_mean")), "accuracy_std": _plain(_get(row, "accuracy_std")),
                  "predicted": {k.removeprefix("predicted."): _plain(_get(row, k)) for k in row.index
                                if k.startswith("predicted.") and _get(row, k) is not None}}
        per_sample = sample_latency_s(row)
        if per_sample is not None:  # streaming: collection + training of one collected sample
            record["predicted"]["sample_latency_s"] = per_sample
        out.append(record)
    return out


def _plain(value):
    return value.item() if hasattr(value, "item") else value


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
    from .modes import has_modes
    from .modes import summary_lines as mode_lines

    if len(chosen):
        headers, rows = pick_rows(chosen, modes=has_modes(table, spec))
        lines += [markdown_table(headers, rows), ""]
        if repeated:
            lines += [f"{repeated} more Pareto trial(s) repeat a configuration listed here (see pareto.csv).", ""]
        lines += ["Accuracy is simulated (mean ± std over the repeats); RAM, flash, latency and energy are "
                  "predictions of the cost models for the epochs early stopping ran."]
    else:
        lines.append("No feasible complete trial yet.")
    from .lifetime_report import summary_lines as lifetime_lines

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
    from .plots import write_plots

    out = Path(out)
    table = trial_table(study, spec)
    written = []
    atomic.write_text(out / "trials.csv", _csv(table))
    atomic.write_text(out / "pareto.csv", _csv(picks(table, spec)))
    written += [out / "trials.csv", out / "pareto.csv"]
    plots = write_plots(table, spec, out, study)
    atomic.write_text(out / "summary.md", summary_markdown(study, spec, table, [p.name for p in plots]))
    return written + plots + [out / "summary.md"]
