"""The trials of a study as one table (a row per trial: state, configuration, accuracy, feasibility, constraint
values, predicted costs) and its feasible Pareto picks: what the reports, the plots, `dse show` and `dse validate`
read."""
from __future__ import annotations

import optuna
import pandas as pd
from optuna.trial import TrialState

from .trial_run import ATTR_ACCURACY, ATTR_CONFIG, ATTR_FAIL, ATTR_LIFETIME, ATTR_PREDICTED
from .studyfile import StudySpec

CONFIG_COLUMNS = ["task", "model", "scheme", "cut", "hidden", "samples", "epochs", "batch", "lr", "momentum",
                  "decay", "patience", "restore_best", "mode", "replay"]


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
