"""The training mode in the reports: labels, the per-sample latency of streaming rows, and the summary.md section
that compares the two modes on the front (does streaming need less RAM than stored at equal accuracy?).

Every cost figure is a prediction of the cost models and is labelled so; accuracy is simulated."""
from __future__ import annotations

import math

import pandas as pd

from dse.reports.tables import markdown_table, sig

EQUAL_ACCURACY_POINTS = 1.0  # two picks have "equal accuracy" when their simulated means differ by at most this
MARKERS = {"stored": "o", "streaming": "^"}  # the plots' marker shape per mode


def _value(row, key):
    value = row.get(key) if hasattr(row, "get") else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def mode_of(row) -> str:
    """A trial row's mode (studies from before streaming existed are stored)."""
    return str(_value(row, "mode") or "stored")


def mode_label(row, short: bool = False) -> str:
    """"stored", "streaming" or "streaming, replay 8" ("stream K8" when `short`)."""
    mode = mode_of(row)
    replay = int(_value(row, "replay") or 0)
    if mode != "streaming":
        return mode
    if short:
        return f"stream K{replay}"
    return f"streaming, replay {replay}" if replay else "streaming"


def sample_latency_s(row) -> float | None:
    """A streaming row's predicted latency per collected sample (collection + training of that sample): the
    cost model's `sample_latency_s`, else the same sum of the two phases' predicted times over the samples;
    None for stored rows (they collect first and train once) or when a phase is not priced."""
    if mode_of(row) != "streaming":
        return None
    given = _value(row, "predicted.sample_latency_s")
    if given is not None:
        return float(given)
    collection, training = _value(row, "predicted.time.collection_s"), _value(row, "predicted.time.training_s")
    samples = _value(row, "samples")
    if collection is None or training is None or not samples:
        return None
    return (float(collection) + float(training)) / float(samples)


def has_modes(frame: pd.DataFrame, spec=None) -> bool:
    """Whether the reports mark the mode: the study explores it, or a row is a streaming one."""
    if spec is not None and "mode" in getattr(spec.space, "params", {}):
        return True
    return "mode" in frame and bool((frame["mode"] == "streaming").any())


# --- summary.md -------------------------------------------------------------------------------------------------

def ram_comparison(table: pd.DataFrame, chosen: pd.DataFrame) -> list[dict]:
    """For each streaming pick: the stored picks of equal accuracy (simulated means within
    EQUAL_ACCURACY_POINTS) and the stored feasible trials of at least its accuracy, with their smallest predicted
    RAM. `less_than_every` is True when the streaming pick needs less RAM than every stored pick of equal
    accuracy, `less_than_stored_trials` than every such stored trial (None: there is none)."""
    done = table[(table["state"] == "COMPLETE") & (table["feasible"] == True)]  # noqa: E712
    stored_done = done[done.apply(mode_of, axis=1) == "stored"] if len(done) else done
    stored_picks = chosen[chosen.apply(mode_of, axis=1) == "stored"] if len(chosen) else chosen
    out = []
    for _, s in chosen.iterrows():
        if mode_of(s) != "streaming":
            continue
        acc, ram = 100 * float(s["accuracy_mean"]), float(s["predicted.ram_total"])
        equal = stored_picks[(100 * stored_picks["accuracy_mean"].astype(float) - acc).abs()
                             <= EQUAL_ACCURACY_POINTS] if len(stored_picks) else stored_picks
        at_least = stored_done[100 * stored_done["accuracy_mean"].astype(float) >= acc - EQUAL_ACCURACY_POINTS] \
            if len(stored_done) else stored_done
        out.append({
            "trial": int(s["number"]), "label": mode_label(s), "accuracy": acc, "ram": ram,
            "equal_picks": len(equal),
            "equal_min_ram": float(equal["predicted.ram_total"].astype(float).min()) if len(equal) else None,
            "stored_min_ram": float(at_least["predicted.ram_total"].astype(float).min()) if len(at_least) else None,
            "less_than_every": bool((equal["predicted.ram_total"].astype(float) > ram).all()) if len(equal) else None,
            "less_than_stored_trials": bool((at_least["predicted.ram_total"].astype(float) > ram).all())
            if len(at_least) else None,
        })
    return out


def summary_lines(spec, table: pd.DataFrame, chosen: pd.DataFrame) -> list[str]:
    """The `## Streaming and stored` section (studies that explore the mode)."""
    if not has_modes(table, spec) or not len(chosen):
        return []
    counts = chosen.apply(mode_of, axis=1).value_counts()
    lines = ["## Streaming and stored (RAM predicted, accuracy simulated)", "",
             f"The front holds {int(counts.get('stored', 0))} stored and {int(counts.get('streaming', 0))} "
             f"streaming pick(s).", ""]
    rows = ram_comparison(table, chosen)
    if not rows:
        return lines
    cells = []
    for r in rows:
        verdict = ("no stored pick of equal accuracy" if r["less_than_every"] is None
                   else "yes" if r["less_than_every"] else "no")
        cells.append([str(r["trial"]), r["label"], f"{r['accuracy']:.1f}", sig(r["ram"] / 1024),
                      str(r["equal_picks"]), sig(r["equal_min_ram"] / 1024) if r["equal_min_ram"] else "",
                      verdict, sig(r["stored_min_ram"] / 1024) if r["stored_min_ram"] else "",
                      {None: "no such stored trial", True: "yes", False: "no"}[r["less_than_stored_trials"]]])
    compared = [r for r in rows if r["less_than_every"] is not None]
    trials = [r for r in rows if r["less_than_stored_trials"] is not None]
    lines += [
        markdown_table(["trial", "mode", "accuracy (%)", "pred. RAM (KB)", "stored picks of equal accuracy",
                        "their least pred. RAM (KB)", "less RAM than each of them",
                        "least pred. RAM of feasible stored trials at >= its accuracy (KB)",
                        "less RAM than each of those"], cells), "",
        f"Equal accuracy: simulated means within {EQUAL_ACCURACY_POINTS:g} percentage point. "
        f"{sum(1 for r in compared if r['less_than_every'])} of {len(compared)} streaming picks with a stored pick of "
        f"equal accuracy need less RAM than every such stored pick; "
        f"{sum(1 for r in trials if r['less_than_stored_trials'])} of {len(trials)} streaming picks need less RAM "
        f"than every feasible stored trial (pick or not) of at least their accuracy (less "
        f"{EQUAL_ACCURACY_POINTS:g} point).", "",
    ]
    return lines
