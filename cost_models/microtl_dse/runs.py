"""Reading firmware run records: what our firmware measured on a board (the schema: vocabulary/run_records.py; the
writer: firmware/run_records.py), one row per run and metric, with provenance, checked and typed for the fits.

The calibration data of boards that run *our* firmware (qemu-an386): retired instructions per phase, peak RAM and
flash of the ELF (on the real nRF52840 DK: cycles and energy per phase, for its emulator map), and the configuration
that produced them plus its derived counts, checked against the zoo on load. Malformed input raises
`RunRecordError` naming file, line and column.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from cost_models.workload import BIAS_BYTES
from models.zoo import head_counts
from vocabulary.configuration import DOMAINS, MODES, Configuration
from vocabulary.phases import PHASES
from vocabulary.run_records import COLUMNS, METRICS, OPTIONAL_COLUMNS, RunRecordError


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
        """Everything but N, epochs and the ring size: the group left out together in cross-validation."""
        c = self.config
        return (c.model, c.cut, c.hidden, c.batch, self.classes, c.mode)


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
    mode = (row.get("mode") or "stored").strip()
    if mode not in MODES:
        raise fail("mode", f"must be one of {', '.join(MODES)}")
    replay = integer("replay") if (row.get("replay") or "").strip() else 0
    scheme = text("scheme")
    if scheme not in BIAS_BYTES:
        raise fail("scheme", f"must be one of {', '.join(BIAS_BYTES)}")
    try:
        config = Configuration(task=text("task"), model=text("model"), cut=text("cut"), hidden=integer("hidden"),
                               samples=integer("samples", DOMAINS["samples"].study_at_least),  # a study's bound
                               epochs=integer("epochs", DOMAINS["epochs"].at_least),
                               batch=integer("batch", DOMAINS["batch"].at_least), momentum=momentum,
                               patience=integer("patience", DOMAINS["patience"].at_least),
                               scheme=scheme, restore_best=restore == "1", mode=mode, replay=replay)
        classes = integer("classes", 1)
        counts = head_counts(config.model, config.cut, config.hidden, classes)
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
