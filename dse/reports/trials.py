"""The trials of a study as one table (a row per trial: state, configuration, accuracy, feasibility, constraint
values, predicted costs), its feasible Pareto picks, and the picks as rows and records: what the reports, the plots,
`dse show` and `dse validate` read."""
from __future__ import annotations

import optuna
import pandas as pd
from optuna.trial import TrialState

from dse.reports.modes import mode_label, sample_latency_s
from dse.reports.tables import sig
from dse.study.file import StudySpec
from dse.study.trial_attrs import ATTR_ACCURACY, ATTR_CONFIG, ATTR_FAIL, ATTR_LIFETIME, ATTR_PREDICTED
from vocabulary.configuration import DOMAINS, VARIED

# the configuration's fields: those other sections of the study file name (task, model, scheme), then [space]'s
CONFIG_COLUMNS = [*(name for name in DOMAINS if name not in VARIED), *VARIED]


def trial_table(study: optuna.Study, spec: StudySpec) -> pd.DataFrame:
    """One row per trial: state, reason, configuration, accuracy, feasibility, constraint values, predicted costs."""
    trials = study.get_trials(deepcopy=False)
    picks = {t.number for t in study.best_trials}  # feasible Pareto-optimal complete trials
    constraint_keys = [c.key for c in spec.constraints]
    for t in trials:
        # the legacy list written for optuna-dashboard reads back as keys "0", "1", ...: the named keys suffice
        constraint_keys += [k for k in t.constraints if k not in constraint_keys and not k.isdigit()]
    rows = []
    for t in trials:
        config = {**t.params, **t.user_attrs.get(ATTR_CONFIG, {})}
        acc = t.user_attrs.get(ATTR_ACCURACY, {})
        complete = t.state == TrialState.COMPLETE
        row = {
            "number": t.number,
            "state": t.state.name,
            "fail_reason": t.user_attrs.get(ATTR_FAIL, ""),
            "duration_s": t.duration.total_seconds() if t.duration else None,
            **{c: config.get(c) for c in CONFIG_COLUMNS},
            "accuracy_mean": acc.get("mean"),
            "accuracy_std": acc.get("std"),
            "accuracy_per_repeat": ";".join(f"{v:.6g}" for v in acc.get("per_repeat", [])),
            "epochs_mean": acc.get("epochs_mean"),
            "feasible": all(v <= 0 for v in t.constraints.values()) if complete else None,
            "pareto": t.number in picks,
            **{f"constraint.{k}": t.constraints.get(k) for k in constraint_keys},
            **{f"predicted.{k}": v for k, v in t.user_attrs.get(ATTR_PREDICTED, {}).items()},
            **{f"lifetime.{k}": v for k, v in t.user_attrs.get(ATTR_LIFETIME, {}).items()},
        }
        rows.append(row)
    columns = ["number", "state", "fail_reason", "duration_s", *CONFIG_COLUMNS, "accuracy_mean", "accuracy_std",
               "accuracy_per_repeat", "epochs_mean", "feasible", "pareto",
               *[f"constraint.{k}" for k in constraint_keys]]
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if column not in columns:
            columns.append(column)
    return frame.reindex(columns=columns)


def picks(table: pd.DataFrame, spec: StudySpec, unique: bool = False) -> pd.DataFrame:
    """The feasible Pareto-optimal trials, best accuracy first. A sampler may propose a configuration twice
    (same results: the simulation is seeded); `unique` keeps the first trial of each."""
    chosen = table[table["pareto"] == True]  # noqa: E712 - pandas mask
    if "accuracy_mean" in chosen and chosen["accuracy_mean"].notna().any():
        chosen = chosen.sort_values(["accuracy_mean", "number"], ascending=[False, True])
    if unique and len(chosen):
        first = chosen.sort_values("number").drop_duplicates(subset=CONFIG_COLUMNS)["number"]
        chosen = chosen[chosen["number"].isin(first)]
    return chosen


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
