"""Firmware run records: what our firmware measured on a board, one row per run and metric, with provenance.

The calibration data of boards that run *our* firmware (qemu-an386): retired instructions per phase, peak RAM and
flash of the ELF (on the real nRF52840 DK: cycles and energy per phase, for its emulator map), and the configuration that produced them (model, cut, head, N, epochs run, batch, test inputs) plus
its derived counts (feature size, head parameters and MACs) so a row can be read without the code. Provenance:
source (campaign or a study's validation record), firmware sources sha256, ELF sha256, toolchain, emulator, date.

Rows are appended by the calibration campaign (firmware/calibrate.py) and by importing validation records; a run's
`key` identifies its configuration so a resumed campaign skips what is already measured. Malformed input raises
`RunRecordError` naming file, line and column.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from vocabulary.configuration import Configuration

from .workload import BIAS_BYTES

PHASES = ("collection", "training", "evaluation")
METRICS = {  # metric -> (unit, needs a phase)
    "instructions": ("insns", True),
    "peak_ram": ("B", False),  # static RAM of the validation ELF + stack high-water + heap high-water
    "flash": ("B", False),  # allocated sections with contents, from the validation ELF
    "static_ram": ("B", False),
    "stack": ("B", False),
    # the deployed image (its own ELF, no harness, no stored inputs): what studies price and the memory models fit
    "deployed_ram": ("B", False),  # its static RAM + the validation run's stack and heap high-water marks
    "deployed_flash": ("B", False),
    "harness_ram": ("B", False),  # the validation harness's share: validation ELF - deployed ELF
    "harness_flash": ("B", False),
    # real boards (nrf52840dk validations: the emulator map's own records)
    "cycles": ("cycles", True),  # DWT->CYCCNT per phase
    "energy_nj": ("nJ", True),  # PPK2: run-average current x supply x phase time
    # qemu-an386: the static Cortex-M4 cycle estimate (firmware/cycle_estimate.py: per-block execution counts x
    # TRM timing), an estimate, never a measurement; the estimate's assumptions are in the row's emulator column
    "cycles_estimate": ("cycles (estimate)", True),
}
ESTIMATE_METRICS = ("cycles_estimate",)  # rows whose provenance names the estimate (`make_rows`' estimate_source)
CONFIG_COLUMNS = ("task", "model", "cut", "hidden", "classes", "samples", "epochs", "patience", "batch", "momentum",
                  "scheme", "test", "epochs_run", "best_epoch", "improvements", "restore_best")
# not in files written before the firmware reported them: improvements read as unknown, restore_best as 1 (the
# firmware always restored the best weights then)
OPTIONAL_COLUMNS = ("improvements", "restore_best")
COUNT_COLUMNS = ("feature", "head_params", "head_macs")  # derived; checked on load
PROVENANCE_COLUMNS = ("source", "sources_sha256", "elf_sha256", "toolchain", "emulator", "date")
COLUMNS = ("key", "board", *CONFIG_COLUMNS, *COUNT_COLUMNS, "metric", "phase", "value", "unit", *PROVENANCE_COLUMNS)


class RunRecordError(ValueError):
    """A run-record file with a missing column or a bad value."""


@dataclass(frozen=True)
class RunRecord:
    file: str
    line: int
    key: str
    board: str
    config: Configuration
    classes: int
    test: int  # test inputs of the evaluation phase (streamed by the harness; in flash before it did)
    epochs_run: int
    best_epoch: int  # early stopping copies the weights at every improvement: at most this many copies
    improvements: int | None  # the improvements the firmware counted (None: not reported, best_epoch bounds them)
    metric: str
    phase: str  # "" for memory metrics
    value: float
    source: str
    sources_sha256: str
    elf_sha256: str
    toolchain: str
    emulator: str
    date: str

    @property
    def where(self) -> str:
        return f"{self.file}, line {self.line}"

    @property
    def copies(self) -> int:
        """The weight copies' count the model takes: the improvements when reported, else their bound."""
        return self.best_epoch if self.improvements is None else self.improvements

    @property
    def cost(self) -> str:
        """The cost this row measures: instructions.<phase>, peak_ram, flash, ..."""
        return f"{self.metric}.{self.phase}" if self.phase else self.metric

    @property
    def shape(self) -> tuple:
        """Everything but N and epochs: the group left out together in cross-validation."""
        c = self.config
        return (c.model, c.cut, c.hidden, c.batch, self.classes)


def counts_of(config: Configuration, classes: int) -> dict[str, int]:
    from models.zoo import get_model, head_layers

    feature = get_model(config.model).check_cut(config.cut).elements
    head = head_layers(feature, config.hidden, classes)
    return {"feature": feature, "head_params": sum(i * o + o for i, o in head), "head_macs": sum(i * o for i, o in head)}


def run_key(config: Configuration, classes: int, test: int) -> str:
    """Identifies a measured configuration (what the firmware was built from, up to the sample draw)."""
    c = config
    return (f"{c.task}/{c.model}/{c.cut}/h{c.hidden}/c{classes}/n{c.samples}/e{c.epochs}/p{c.patience}/b{c.batch}"
            f"/m{c.momentum:g}/lr{c.lr:g}/{c.scheme}/t{test}{'' if c.restore_best else '/last'}")


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
            "restore_best": int(config.restore_best),
            **counts_of(config, classes)}
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
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())


def measured_keys(path: str | Path) -> set[str]:
    path = Path(path)
    if not path.exists():
        return set()
    try:
        with path.open(newline="") as fh:
            return {row["key"] for row in csv.DictReader(fh) if row.get("key")}
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RunRecordError(f"{path}: not a CSV text file of run records ({type(exc).__name__})") from None


def load_runs(path: str | Path) -> list[RunRecord]:
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or []) and c not in OPTIONAL_COLUMNS]
            if missing:
                raise RunRecordError(f"{path}: missing column(s) {', '.join(missing)}")
            rows = [_parse(row, path, reader.line_num) for row in reader]
    except OSError as exc:
        raise RunRecordError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RunRecordError(f"{path}: not a CSV text file of run records ({type(exc).__name__})") from None
    if not rows:
        raise RunRecordError(f"{path}: no records")
    return rows


def load_run_dir(directory: str | Path) -> list[RunRecord]:
    return [r for p in sorted(Path(directory).glob("*.csv")) for r in load_runs(p)]


def _parse(row: dict, path: Path, line: int) -> RunRecord:
    def fail(column: str, message: str) -> RunRecordError:
        return RunRecordError(f"{path}, line {line}, column {column}: {message} (got {row.get(column)!r})")

    def integer(column: str, minimum: int = 0) -> int:
        try:
            value = int(row.get(column) or "")
        except ValueError:
            raise fail(column, "not an integer") from None
        if value < minimum:
            raise fail(column, f"must be >= {minimum}")
        return value

    def text(column: str) -> str:
        value = (row.get(column) or "").strip()
        if not value:
            raise fail(column, "empty")
        return value

    try:
        momentum = float(text("momentum"))
    except ValueError:
        raise fail("momentum", "not a number") from None
    restore = (row.get("restore_best") or "1").strip()
    if restore not in ("0", "1"):
        raise fail("restore_best", "must be 0 or 1")
    scheme = text("scheme")
    if scheme not in BIAS_BYTES:
        raise fail("scheme", f"must be one of {', '.join(BIAS_BYTES)}")
    try:
        config = Configuration(task=text("task"), model=text("model"), cut=text("cut"), hidden=integer("hidden"),
                               samples=integer("samples", 2), epochs=integer("epochs", 1),
                               batch=integer("batch", 1), momentum=momentum, patience=integer("patience", 1),
                               scheme=scheme, restore_best=restore == "1")
        classes = integer("classes", 1)
        counts = counts_of(config, classes)
    except ValueError as exc:
        raise fail("model", " ".join(str(exc).split())) from None
    for column, value in counts.items():
        if integer(column) != value:
            raise fail(column, f"the configuration gives {value}")
    metric = text("metric")
    if metric not in METRICS:
        raise fail("metric", f"must be one of {', '.join(METRICS)}")
    phase = (row.get("phase") or "").strip()
    if METRICS[metric][1] and phase not in PHASES:
        raise fail("phase", f"an {metric} row names one of {', '.join(PHASES)}")
    if not METRICS[metric][1] and phase:
        raise fail("phase", f"a {metric} row has no phase")
    if text("unit") != METRICS[metric][0]:
        raise fail("unit", f"{metric} is in {METRICS[metric][0]}")
    epochs_run = integer("epochs_run", 1)
    if epochs_run > config.epochs:
        raise fail("epochs_run", f"more than the budget of {config.epochs} epochs")
    best_epoch = integer("best_epoch", 0)
    if best_epoch > epochs_run:
        raise fail("best_epoch", f"after the {epochs_run} epochs run")
    improvements = None
    if (row.get("improvements") or "").strip() not in ("", "-"):
        improvements = integer("improvements", 0)
        if improvements > best_epoch:
            raise fail("improvements", f"more than the best epoch {best_epoch}")
    return RunRecord(file=str(path), line=line, key=text("key"), board=text("board"), config=config,
                     classes=classes, test=integer("test"), epochs_run=epochs_run, best_epoch=best_epoch,
                     improvements=improvements, metric=metric, phase=phase,
                     value=float(integer("value", 1)), source=text("source"), sources_sha256=text("sources_sha256"),
                     elf_sha256=text("elf_sha256"), toolchain=text("toolchain"), emulator=text("emulator"),
                     date=text("date"))
