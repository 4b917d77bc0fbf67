"""Measurement records: the only way numbers enter the cost models.

A record file is a plain CSV, one row per run and metric (ram, flash, cycles, time, energy), carrying the
configuration it measured and its provenance (board, source, firmware hash or "published", toolchain, date) and
its scope: the memory terms a RAM/flash figure covers, or the phase a time/energy figure covers. Values are
converted to bytes, seconds, cycles and mJ on load. Malformed input raises `RecordError` naming file, line, column.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from cost_models.paper.memory import TERMS
from cost_models.workload import BIAS_BYTES, Workload, build_workload
from models.zoo import get_model
from vocabulary.phases import DEVICE_PHASES

CONFIG_COLUMNS = (
    "board", "task", "model", "cut", "feature_bytes", "input_shape", "hidden", "classes",
    "samples", "epochs", "batch", "val_fraction", "optimizer", "scheme",
)  # fmt: skip
COLUMNS = ("run", *CONFIG_COLUMNS, "metric", "scope", "value", "std", "unit", "source", "firmware", "toolchain", "date")
OPTIONAL_COLUMNS = ("note",)

# metric -> unit -> factor to the canonical unit (bytes, cycles, seconds, millijoules)
UNITS = {
    "ram": {"B": 1, "kB": 1000, "KiB": 1024},
    "flash": {"B": 1, "kB": 1000, "KiB": 1024},
    "cycles": {"cycles": 1},
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6},
    "energy": {"mJ": 1.0, "J": 1e3, "uJ": 1e-3},
}
OPTIMIZERS = {"sgd": False, "sgd_momentum": True}  # name -> keeps a momentum velocity
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_HASH = re.compile(r"^[0-9a-f]{7,40}$")


class RecordError(ValueError):
    """A record file with a missing column or a bad value."""


@dataclass(frozen=True)
class Record:
    file: str
    line: int
    run: str
    board: str
    task: str
    model: str
    cut: str
    feature_bytes: int
    input_shape: tuple[int, ...]
    hidden: int
    classes: int
    samples: int
    epochs: int
    batch: int
    val_fraction: float
    optimizer: str
    scheme: str
    metric: str
    scope: tuple[str, ...]  # memory terms (ram, flash) or one phase (cycles, time, energy)
    value: float  # canonical unit: bytes, cycles, s, mJ
    std: float | None
    unit: str  # as written in the file
    source: str
    firmware: str
    toolchain: str
    date: str
    note: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}, line {self.line}"

    @property
    def phase(self) -> str | None:
        return self.scope[0] if self.metric in ("cycles", "time", "energy") else None

    @property
    def val_samples(self) -> int:
        """Same rule as `Configuration.val_samples`: a fraction of the samples, at least 1."""
        return max(1, round(self.samples * self.val_fraction)) if self.samples > 1 else 0

    def config_key(self) -> tuple:
        """Everything but the sample count: records sharing it form one series in N."""
        return tuple(getattr(self, c) for c in CONFIG_COLUMNS if c != "samples")

    def workload(self) -> Workload:
        return build_workload(
            self.model, self.cut, self.classes, self.hidden, self.samples, self.val_samples,
            self.batch, OPTIMIZERS[self.optimizer], self.scheme,
        )  # fmt: skip


def load_records(path: str | Path) -> list[Record]:
    """Read and validate one record CSV."""
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise RecordError(f"{path}: missing column(s) {', '.join(missing)}")
            unknown = [c for c in header if c not in COLUMNS and c not in OPTIONAL_COLUMNS]
            if unknown:
                raise RecordError(f"{path}: unknown column(s) {', '.join(unknown)}")
            records = [_parse(row, path, reader.line_num) for row in reader]
    except OSError as exc:
        raise RecordError(f"{path}: cannot read ({exc.strerror})") from None
    if not records:
        raise RecordError(f"{path}: no records")
    _check_runs(records)
    return records


def load_record_dir(directory: str | Path) -> list[Record]:
    """All `*.csv` record files of a directory, in name order."""
    return [r for p in sorted(Path(directory).glob("*.csv")) for r in load_records(p)]


class _Row:
    """Typed access to one CSV row; every failure names file, line and column."""

    def __init__(self, row: dict, path: Path, line: int):
        self.row, self.path, self.line = row, path, line

    def fail(self, column: str, message: str) -> RecordError:
        return RecordError(f"{self.path}, line {self.line}, column {column}: {message} (got {self.row.get(column)!r})")

    def text(self, column: str) -> str:
        value = (self.row.get(column) or "").strip()
        if not value:
            raise self.fail(column, "empty")
        return value

    def integer(self, column: str, minimum: int = 1) -> int:
        try:
            value = int(self.text(column))
        except ValueError:
            raise self.fail(column, "not an integer") from None
        if value < minimum:
            raise self.fail(column, f"must be >= {minimum}")
        return value

    def number(self, column: str) -> float:
        try:
            value = float(self.text(column))
        except ValueError:
            raise self.fail(column, "not a number") from None
        if not value >= 0 or value == float("inf"):
            raise self.fail(column, "must be a finite number >= 0")
        return value

    def choice(self, column: str, options) -> str:
        value = self.text(column)
        if value not in options:
            raise self.fail(column, f"must be one of {', '.join(options)}")
        return value


def _parse(raw: dict, path: Path, line: int) -> Record:
    r = _Row(raw, path, line)
    try:
        model = get_model(r.text("model"))
    except ValueError as exc:
        raise r.fail("model", str(exc)) from None
    try:
        cut = model.check_cut(r.text("cut"))
    except ValueError as exc:
        raise r.fail("cut", str(exc)) from None
    feature_bytes = r.integer("feature_bytes")
    if feature_bytes != cut.bytes:
        raise r.fail("feature_bytes", f"the zoo's {model.name}.{cut.name} stores {cut.bytes} B per feature")
    try:
        input_shape = tuple(int(d) for d in r.text("input_shape").split("x"))
    except ValueError:
        raise r.fail("input_shape", "expected dimensions like 32x32x3") from None
    if input_shape != tuple(model.input_shape):
        raise r.fail("input_shape", f"model {model.name} takes {'x'.join(map(str, model.input_shape))}")
    val_fraction = r.number("val_fraction")
    if not 0 < val_fraction < 1:
        raise r.fail("val_fraction", "must be in (0, 1)")
    metric = r.choice("metric", tuple(UNITS))
    unit = r.choice("unit", tuple(UNITS[metric]))
    factor = UNITS[metric][unit]
    scope = tuple(s.strip() for s in r.text("scope").split("+"))
    allowed = TERMS.get(metric, DEVICE_PHASES)
    if any(s not in allowed for s in scope) or len(set(scope)) != len(scope):
        what = "'+'-joined terms of" if metric in TERMS else "one of"
        raise r.fail("scope", f"a {metric} record covers {what}: {', '.join(allowed)}")
    if metric not in TERMS and len(scope) != 1:
        raise r.fail("scope", f"a {metric} record covers exactly one phase")
    std_text = (raw.get("std") or "").strip()
    firmware = r.text("firmware")
    if firmware != "published" and not _HASH.match(firmware):
        raise r.fail("firmware", "must be a git hash (7-40 hex digits) or 'published'")
    date = r.text("date")
    if not _DATE.match(date):
        raise r.fail("date", "must be YYYY, YYYY-MM or YYYY-MM-DD")
    return Record(
        file=str(path),
        line=line,
        run=r.text("run"),
        board=r.text("board"),
        task=r.text("task"),
        model=model.name,
        cut=cut.name,
        feature_bytes=feature_bytes,
        input_shape=input_shape,
        hidden=r.integer("hidden", 0),
        classes=r.integer("classes"),
        samples=r.integer("samples"),
        epochs=r.integer("epochs"),
        batch=r.integer("batch"),
        val_fraction=val_fraction,
        optimizer=r.choice("optimizer", tuple(OPTIMIZERS)),
        scheme=r.choice("scheme", tuple(BIAS_BYTES)),
        metric=metric,
        scope=scope,
        value=_positive(r, "value") * factor,
        std=r.number("std") * factor if std_text else None,
        unit=unit,
        source=r.text("source"),
        firmware=firmware,
        toolchain=r.text("toolchain"),
        date=date,
        note=(raw.get("note") or "").strip(),
    )


def _positive(r: _Row, column: str) -> float:
    value = r.number(column)
    if value == 0:
        raise r.fail(column, "must be > 0")
    return value


def _check_runs(records: list[Record]) -> None:
    """Rows of one run describe one configuration, and each metric+scope appears once per run."""
    first: dict[str, Record] = {}
    seen: set[tuple] = set()
    for rec in records:
        ref = first.setdefault(rec.run, rec)
        for column in CONFIG_COLUMNS:
            if getattr(rec, column) != getattr(ref, column):
                raise RecordError(
                    f"{rec.where}, column {column}: run {rec.run!r} has {getattr(rec, column)!r} here but "
                    f"{getattr(ref, column)!r} on line {ref.line}"
                )
        key = (rec.run, rec.metric, rec.scope)
        if key in seen:
            scope = "+".join(rec.scope)
            raise RecordError(f"{rec.where}, column metric: run {rec.run!r} repeats {rec.metric} for {scope}")
        seen.add(key)
