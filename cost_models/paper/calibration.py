"""Calibration: fit memory scales and cycle coefficients of one board from its measurement records.

Fitted on load and cached per process, not stored as a committed fit: the records are the single source of truth
(a stored fit can silently go stale when a record is added), the fit takes milliseconds, and the package ships
only CSV/TOML data. `save_calibration` writes a versioned JSON snapshot (e.g. next to a study's results) and
`read_calibration` reads it back, for reproducibility.

Procedure: (1) screen records for outliers (`outliers.screen`) and leave flagged ones out; (2) memory: per metric,
NNLS of (measured - fixed terms) on the term byte counts inside each record's scope; (3) phases: non-negative
least squares of cycles on operation counts, in relative residuals; in (2) and (3) only identifiable columns are
fitted (`fitting.select_identifiable`); (4) residuals of every record under the fit.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from cost_models.board import BoardSpec, load_board
from cost_models.paper.fitting import fit_nonnegative
from cost_models.paper.latency import COUNTS, cycles, phase_counts
from cost_models.paper.memory import CONSTANT_TERMS, FIXED_TERMS, TERMS, default_scale, flash_bytes, ram_bytes
from cost_models.paper.outliers import screen
from cost_models.paper.price import price
from cost_models.paper.records import Record, load_records
from vocabulary.phases import DEVICE_PHASES

FORMAT_VERSION = 1


class CalibrationError(ValueError):
    """No usable calibration for a board."""


@dataclass(frozen=True)
class FitSettings:
    """Method settings (not cost coefficients), recorded with every calibration."""

    # A record is an outlier when it is more than this (relative) off its series' trend or off the board's phase
    # power. 5% is above Table III's run-to-run spread (std <= 0.2 s, under 3% of its smallest time) and above
    # the rounding its other rows show (<= 2.4%).
    outlier_threshold: float = 0.05
    # A column enters a fit only if at least this fraction of it (unit-normalised, as weighted in the fit) is
    # orthogonal to the columns admitted before it. Published figures rounded to whole kB or seconds carry up to
    # ~1% (RAM) and ~7% (time at 7 s) rounding, so a smaller difference in direction cannot be told from noise.
    identifiability_tol: float = 0.05
    # Residual scale (relative) of an optional soft-L1 refinement of the phase fits. Off by default: outliers
    # are screened out before the fit, and a soft-L1 loss would side with the majority of rows whenever the model
    # cannot explain all series equally (Table III: HAR 8 s vs CIFAR 7 s per 100 samples with near-identical heads).
    robust_scale: float | None = None


@dataclass(frozen=True)
class TermFit:
    scale: float  # multiplies the term's byte count; for constant terms: the size in bytes
    status: str  # fixed | fitted | absorbed | as_allocated
    note: str = ""


@dataclass(frozen=True)
class PhaseFit:
    coefficients: dict[str, float]  # cycles per count
    status: dict[str, str]  # per count: fitted | absorbed | unobserved
    rows: int

    def cycles(self, counts: dict[str, float]) -> tuple[float | None, str]:
        """Cycles for these counts, or None and the reason when a count no record has exercised is needed."""
        missing = [k for k, n in counts.items() if n and self.status.get(k) == "unobserved"]
        if missing:
            return None, f"no calibration record exercises {', '.join(missing)}"
        return cycles(counts, self.coefficients), ""


@dataclass(frozen=True)
class Flag:
    file: str
    line: int
    run: str
    metric: str
    scope: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Residual:
    file: str
    line: int
    run: str
    metric: str
    scope: str
    samples: int
    measured: float  # bytes, cycles, s or mJ
    predicted: float | None
    rel_error: float | None  # predicted / measured - 1
    flagged: bool


@dataclass(frozen=True)
class Calibration:
    board: str
    version: int
    digest: str  # sha256 of the record files the fit used
    files: tuple[str, ...]
    settings: FitSettings
    ram: dict[str, TermFit]
    flash: dict[str, TermFit]
    phases: dict[str, PhaseFit]  # only phases with records; the others are uncalibrated
    flagged: tuple[Flag, ...] = ()
    residuals: tuple[Residual, ...] = ()
    notes: tuple[str, ...] = ()
    _scales: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._scales.update({m: {t: f.scale for t, f in getattr(self, m).items()} for m in TERMS})

    def scales(self, metric: str) -> dict[str, float]:
        return self._scales[metric]

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["_scales"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        if data.get("version") != FORMAT_VERSION:
            raise CalibrationError(f"calibration format version {data.get('version')!r}, expected {FORMAT_VERSION}")
        return cls(
            board=data["board"],
            version=data["version"],
            digest=data["digest"],
            files=tuple(data["files"]),
            settings=FitSettings(**data["settings"]),
            ram={k: TermFit(**v) for k, v in data["ram"].items()},
            flash={k: TermFit(**v) for k, v in data["flash"].items()},
            phases={k: PhaseFit(**v) for k, v in data["phases"].items()},
            flagged=tuple(Flag(**{**f, "reasons": tuple(f["reasons"])}) for f in data["flagged"]),
            residuals=tuple(Residual(**r) for r in data["residuals"]),
            notes=tuple(data["notes"]),
        )


def load_calibration(board: str | BoardSpec = "nrf52840dk", directory: str | Path | None = None) -> Calibration:
    """The fitted calibration of a board from the records in `directory` (default: `board.calibration_dir`)."""
    board = board if isinstance(board, BoardSpec) else load_board(board)
    return _cached(board, Path(directory).resolve() if directory else board.calibration_dir)


def clear_cache() -> None:
    """Forget fitted calibrations (after records changed in this process)."""
    _cached.cache_clear()


@lru_cache(maxsize=16)
def _cached(board: BoardSpec, directory: Path) -> Calibration:
    files = sorted(directory.glob("*.csv")) if directory.is_dir() else []
    if not files:
        raise CalibrationError(f"board {board.name!r} has no calibration records: no *.csv in {directory}")
    records = [r for p in files for r in load_records(p)]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()
    return fit_calibration(board, records, files=tuple(p.name for p in files), digest=digest)


def save_calibration(calibration: Calibration, path: str | Path) -> None:
    Path(path).write_text(json.dumps(calibration.to_dict(), indent=1) + "\n")


def read_calibration(path: str | Path) -> Calibration:
    try:
        return Calibration.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:  # ValueError covers JSON and CalibrationError
        raise CalibrationError(f"{path}: not a calibration snapshot ({exc})") from None


def fit_calibration(
    board: BoardSpec,
    records: list[Record],
    settings: FitSettings = FitSettings(),
    files: tuple[str, ...] = (),
    digest: str = "",
) -> Calibration:
    for rec in records:
        if rec.board != board.name:
            raise CalibrationError(f"{rec.where}, column board: {rec.board!r} in the calibration of {board.name!r}")
    flags = screen(records, board, settings.outlier_threshold)
    usable = [r for i, r in enumerate(records) if i not in flags]
    notes: list[str] = []
    memory = {m: _fit_terms(m, usable, settings, notes) for m in TERMS}
    phases = {}
    for phase in DEVICE_PHASES:
        rows = [r for r in usable if r.phase == phase and r.metric in ("time", "cycles")]
        if rows:
            phases[phase] = _fit_phase(phase, rows, board, settings, notes)
        else:
            notes.append(f"{phase}: no time/cycles records for {board.name}; the phase is uncalibrated")
    cal = Calibration(
        board=board.name,
        version=FORMAT_VERSION,
        digest=digest,
        files=files,
        settings=settings,
        ram=memory["ram"],
        flash=memory["flash"],
        phases=phases,
        flagged=tuple(
            Flag(Path(r.file).name, r.line, r.run, r.metric, "+".join(r.scope), tuple(reasons))
            for r, reasons in ((records[i], reasons) for i, reasons in sorted(flags.items()))
        ),  # fmt: skip
        notes=tuple(notes),
    )
    residuals = tuple(_residual(rec, i in flags, cal, board) for i, rec in enumerate(records))
    return replace(cal, residuals=residuals)


def _fit_terms(metric: str, records: list[Record], settings: FitSettings, notes: list[str]) -> dict[str, TermFit]:
    terms = TERMS[metric]
    rows = [r for r in records if r.metric == metric]
    covered = {t for r in rows for t in r.scope}
    free = [t for t in terms if t in covered and t not in FIXED_TERMS]
    out = {
        t: TermFit(1.0, "fixed") if t in FIXED_TERMS
        else TermFit(default_scale(t), "as_allocated", "no calibration record covers this term")
        for t in terms
    }  # fmt: skip
    if not free:
        return out
    raw = [(ram_bytes if metric == "ram" else flash_bytes)(r.workload()) for r in rows]
    X = np.array([[b[t] if t in r.scope else 0 for t in free] for r, b in zip(rows, raw)], dtype=float)
    y = np.array([r.value - sum(b[t] for t in r.scope if t in FIXED_TERMS) for r, b in zip(rows, raw)])
    coef, sel = fit_nonnegative(X, y, relative=False, tol=settings.identifiability_tol)
    fitted = [free[j] for j in sel.selected]
    for j, c in ((j, coef[j]) for j in sel.selected):
        what = "size in bytes" if free[j] in CONSTANT_TERMS else "scale"
        out[free[j]] = TermFit(float(c), "fitted", f"{what} fitted on {len(rows)} {metric} records")
    absorbed = [free[j] for j in sel.absorbed + sel.unobserved]
    for t in absorbed:
        out[t] = TermFit(0.0, "absorbed", f"not separable from {', '.join(fitted)} in the records; they carry it")
    if absorbed:
        notes.append(
            f"{metric}: {', '.join(absorbed)} not separable from {', '.join(fitted)} in the records "
            "(attribution between them is arbitrary; scale 0 here, their bytes are carried by the fitted terms)"
        )
    distinct = len({tuple(row) for row in X})
    if distinct <= len(fitted):
        notes.append(
            f"{metric}: {len(fitted)} fitted terms for {distinct} distinct term patterns in the records: exactly "
            "determined, so the residuals do not test these terms (only the fixed ones)"
        )
    return out


def _fit_phase(phase: str, rows: list[Record], board: BoardSpec, settings: FitSettings, notes: list[str]) -> PhaseFit:
    names = COUNTS[phase]
    X = np.array([[phase_counts(phase, r.workload(), r.epochs)[k] for k in names] for r in rows])
    y = np.array([r.value if r.metric == "cycles" else r.value * board.clock_hz for r in rows])
    coef, sel = fit_nonnegative(
        X, y, relative=True, tol=settings.identifiability_tol, robust_scale=settings.robust_scale
    )
    coefficients = dict.fromkeys(names, 0.0)
    status = dict.fromkeys(names, "unobserved")
    for j, c in ((j, coef[j]) for j in sel.selected):
        coefficients[names[j]] = float(c)
        status[names[j]] = "fitted"
    for j in sel.absorbed:
        status[names[j]] = "absorbed"
    fitted = [names[j] for j in sel.selected]
    if sel.absorbed:
        notes.append(
            f"{phase}: {', '.join(names[j] for j in sel.absorbed)} not separable from {', '.join(fitted)} in the "
            "records; the fitted coefficients carry their cycles"
        )
    return PhaseFit(coefficients, status, len(rows))


def _residual(rec: Record, flagged: bool, cal: Calibration, board: BoardSpec) -> Residual:
    """Measured vs predicted for one record, through the same predictor `predict` uses."""
    p = price(rec.workload(), board, cal, rec.epochs)
    predicted: float | None
    if rec.metric in TERMS:
        terms = p.ram if rec.metric == "ram" else p.flash
        predicted = float(sum(terms[t] for t in rec.scope))
    else:
        cost = p.phases[rec.phase]
        predicted = {"cycles": cost.cycles, "time": cost.seconds, "energy": cost.energy_mj}[rec.metric]
    rel = None if predicted is None else predicted / rec.value - 1
    scope = "+".join(rec.scope)
    return Residual(Path(rec.file).name, rec.line, rec.run, rec.metric, scope, rec.samples, rec.value, predicted, rel,
                    flagged)  # fmt: skip


def report(cal: Calibration) -> str:
    """Human-readable summary: coefficients, flagged records, residuals."""
    lines = [f"calibration of {cal.board} (format {cal.version}, {', '.join(cal.files)}, sha256 {cal.digest[:12]})"]
    for metric in TERMS:
        lines.append(f"{metric} scales:")
        for term, f in getattr(cal, metric).items():
            lines.append(f"  {term:20s} {f.scale:12.4f}  {f.status:12s} {f.note}")
    for phase in DEVICE_PHASES:
        fit = cal.phases.get(phase)
        if fit is None:
            lines.append(f"{phase}: uncalibrated")
            continue
        lines.append(f"{phase} cycles per count ({fit.rows} records):")
        for k, c in fit.coefficients.items():
            lines.append(f"  {k:22s} {c:12.4f}  {fit.status[k]}")
    lines.append("flagged records:" if cal.flagged else "flagged records: none")
    for f in cal.flagged:
        lines.append(f"  {f.file}:{f.line} {f.run} {f.metric}: {'; '.join(f.reasons)}")
    lines.append("residuals (predicted / measured - 1):")
    for r in cal.residuals:
        rel = "uncalibrated" if r.rel_error is None else f"{r.rel_error:+7.2%}"
        mark = "  FLAGGED" if r.flagged else ""
        lines.append(f"  {r.run:22s} {r.metric:7s} measured {r.measured:12.1f} predicted "
                     f"{'-' if r.predicted is None else f'{r.predicted:12.1f}'}  {rel}{mark}")  # fmt: skip
    lines += [f"note: {n}" for n in cal.notes]
    return "\n".join(lines)

