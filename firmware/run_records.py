"""Writing calibration run records (the schema: vocabulary/run_records.py): the rows of one measured run, appended to
a record file so that an interrupted campaign keeps every whole run. The calibration campaign (firmware/calibrate.py)
and `dse calibrate import` write them; cost_models/microtl_dse/runs.py reads them.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from models.zoo import head_counts
from vocabulary.configuration import Configuration
from vocabulary.run_records import (COLUMNS, CONFIGURING_COLUMNS, ESTIMATE_METRICS, METRICS, OPTIONAL_COLUMNS,
                                    PROVENANCE_COLUMNS, RunRecordError, run_key)


def make_rows(board: str, config: Configuration, classes: int, test: int, epochs_run: int, best_epoch: int,
              measured: dict[str, float], provenance: dict[str, str], key: str | None = None,
              improvements: int | None = None, estimate_source: str = "") -> list[dict]:
    """CSV rows of one run; `measured` maps cost names (instructions.<phase>, peak_ram, flash, cycles_estimate.<phase>,
    ...) to values. `estimate_source` (how a cycles estimate was made) is appended to the emulator column of the
    estimate's rows: the same file carries measured counts and estimates, and each row says which it is."""
    base = {"key": key or run_key(config, classes, test), "board": board, "task": config.task,
            "model": config.model, "cut": config.cut, "hidden": config.hidden, "classes": classes,
            "samples": config.samples, "epochs": config.epochs, "patience": config.patience, "batch": config.batch,
            "momentum": f"{config.momentum:g}", "scheme": config.scheme, "test": test, "epochs_run": epochs_run,
            "best_epoch": best_epoch, "improvements": "" if improvements is None else improvements,
            "restore_best": int(config.restore_best), "mode": config.mode, "replay": config.replay,
            **head_counts(config.model, config.cut, config.hidden, classes)}
    rows = []
    for cost, value in measured.items():
        if value is None:
            continue
        metric, _, phase = cost.partition(".")
        prov = {k: provenance.get(k, "") or "-" for k in PROVENANCE_COLUMNS}
        if metric in ESTIMATE_METRICS:
            prov["emulator"] = f"{prov['emulator']}; {estimate_source or 'estimate'}"
        rows.append({**base, "metric": metric, "phase": phase, "value": int(value), "unit": METRICS[metric][0],
                     **prov})
    return rows


def append_rows(path: str | Path, rows: list[dict]) -> None:
    """Append rows (header on a new file), flushed and fsynced: an interrupted campaign keeps every whole run."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    columns = list(COLUMNS)
    if not new:  # keep an existing file's columns (one written before an optional column existed has fewer)
        with path.open(newline="") as fh:
            columns = next(csv.reader(fh), columns)
        unknown = [c for c in columns if c not in COLUMNS]
        missing = [c for c in COLUMNS if c not in columns and c not in OPTIONAL_COLUMNS]
        if unknown or missing:
            raise RunRecordError(f"{path}: its header does not match the run-record columns "
                                 f"({', '.join(unknown + missing)}); move it aside to start a new file")
        needed = [c for c in CONFIGURING_COLUMNS if c not in columns
                  and any(str(r.get(c, OPTIONAL_COLUMNS[c])) != OPTIONAL_COLUMNS[c] for r in rows)]
        if needed:  # rows the old header would read back as another configuration (e.g. streaming): the file
            # gains the columns first
            _add_columns(path, columns)
            columns = list(COLUMNS)
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())


def _add_columns(path: Path, columns: list[str]) -> None:
    """Rewrite `path` atomically (a temporary file, then os.replace) with every run-record column, its rows
    unchanged and the optional columns it lacked at their defaults (what cost_models.microtl_dse.runs reads them as)."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows({**OPTIONAL_COLUMNS, **{k: v for k, v in row.items() if k in columns}} for row in rows)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def measured_keys(path: str | Path) -> set[str]:
    path = Path(path)
    if not path.exists():
        return set()
    try:
        with path.open(newline="") as fh:
            return {row["key"] for row in csv.DictReader(fh) if row.get("key")}
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RunRecordError(f"{path}: not a CSV text file of run records ({type(exc).__name__})") from None
