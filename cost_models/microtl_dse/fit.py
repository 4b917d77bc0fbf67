"""Calibration of our firmware's cost models from run records: instructions per phase, peak RAM and flash.

Fitted on load from the board's run records (cost_models/calibration/<board>/*.csv in the cost_models.microtl_dse.runs
format) and cached, like the Table III calibration: the records stay the single source of truth. Instructions:
per phase, non-negative least squares of the measured count on microtl_dse.model.COUNTS (relative residuals); then,
for the training phase, one factor per compiled shape (see `shape_key`): the trainer is C code specialised by the
compiler on the feature width, hidden width, classes and batch size, and its register allocation differs between
shapes by up to +-1.5% of the training instructions (measured), which no count of the loops can follow. A shape
with runs in the records gets the mean measured / predicted ratio of its runs; a shape without gets 1 (the counts
model alone: what the leave-one-shape-out error measures).
Cycle estimates (a second target, fitted the same way on the same counts): the static Cortex-M4 cycle estimate of
each phase that qemu-an386 runs record (`cycles_estimate` rows: per-block execution counts x the TRM's timing,
firmware/cycle_estimate.py), so a configuration's estimated cycles per phase are predicted as its instructions are;
the real nRF52840's emulator map prices the phases it has no timed record of with them. An estimate, never a
measurement: zero wait states, branch refill P = 2, divide 7 cycles. Records without estimate rows (files written
before the campaign recorded them) fit the instructions as before and leave the estimate unfitted.
Memory: NNLS of the measured bytes on the term groups (members proportional by construction share one scale; the sample store is fixed at 1; runtime and code are sizes in bytes).
`save_firmware_calibration` writes a versioned JSON snapshot; `cross_validate` measures the error on shapes left
out of the fit.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from cost_models.atomic import replacing
from cost_models.board import load_board
from cost_models.microtl_dse import model as fm
from cost_models.microtl_dse.runs import RunRecord, load_runs
from cost_models.user_data import layered_files
from cost_models.workload import Workload, workload_from_config
from models.kernels import board_kind
from vocabulary.phases import PHASES

FORMAT = "microtl-dse firmware calibration"
VERSION = 3  # 2: training shape factors; 3: the cycle estimate's model (a version 2 snapshot reads without it)
READ_VERSIONS = (2, 3)
INSTRUCTIONS, ESTIMATE = "instructions", "cycles_estimate"  # the two per-phase targets fitted on the counts
TARGETS = (INSTRUCTIONS, ESTIMATE)
ESTIMATE_COSTS = tuple(f"{ESTIMATE}.{p}" for p in PHASES)
# the deployed image's measured memory (its own ELF; RAM with the validation run's stack and heap) is what the memory
# models fit; runs measured before the deployed image was built apart have only the validation ELF's (LEGACY): they
# enter converted (deployed_view)
MEMORY_METRICS = {"ram": "deployed_ram", "flash": "deployed_flash"}
LEGACY_METRICS = {"deployed_ram": "peak_ram", "deployed_flash": "flash"}
HARNESS_METRICS = {"ram": "harness_ram", "flash": "harness_flash"}
COSTS = (*(f"instructions.{p}" for p in PHASES), "deployed_ram", "deployed_flash", *ESTIMATE_COSTS)


class FirmwareCalibrationError(ValueError):
    """No usable firmware calibration (no records, or a snapshot that is not one)."""


@dataclass(frozen=True)
class FirmwareCalibration:
    board: str
    version: int
    digest: str  # sha256 of the record files
    files: tuple[str, ...]
    runs: int
    instructions: dict[str, dict[str, float]]  # phase -> count -> instructions per count
    status: dict[str, dict[str, str]]  # phase -> count -> fitted | absorbed | unobserved
    ram: dict[str, float]  # group -> scale (constant groups: bytes)
    flash: dict[str, float]
    notes: tuple[str, ...] = ()
    format: str = FORMAT
    shape_factors: dict[str, float] = field(default_factory=dict)  # shape_key -> training measured / predicted
    # the static Cortex-M4 cycle estimate, fitted like the instructions (empty: no estimate records)
    cycles_estimate: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> count -> cycles per count
    cycles_estimate_status: dict[str, dict[str, str]] = field(default_factory=dict)
    estimate_shape_factors: dict[str, float] = field(default_factory=dict)
    estimate_cpi: dict[str, list[float]] = field(default_factory=dict)  # phase -> [min, mean, max] over the runs
    estimate_source: str = ""  # how the records' estimates were made (their assumptions)
    estimate_runs: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FirmwareCalibration":
        if data.get("format") != FORMAT or data.get("version") not in READ_VERSIONS:
            raise FirmwareCalibrationError(f"not a firmware calibration of version {', '.join(map(str, READ_VERSIONS))}"
                                           f" (format {data.get('format')!r}, version {data.get('version')!r})")
        return cls(**{**data, "files": tuple(data["files"]), "notes": tuple(data["notes"])})

    def coefficients(self, target: str) -> dict[str, dict[str, float]]:
        return self.instructions if target == INSTRUCTIONS else self.cycles_estimate

    def statuses(self, target: str) -> dict[str, dict[str, str]]:
        return self.status if target == INSTRUCTIONS else self.cycles_estimate_status

    def factors(self, target: str) -> dict[str, float]:
        return self.shape_factors if target == INSTRUCTIONS else self.estimate_shape_factors


@dataclass(frozen=True)
class FirmwarePrediction:
    """Predicted instructions per phase and memory of one workload on a board running our firmware."""

    instructions: dict[str, float | None]  # phase -> instructions (None: a count no record exercised)
    ram: dict[str, int]  # bytes per term of the deployed image
    flash: dict[str, int]
    notes: tuple[str, ...] = field(default=())
    # phase -> the static Cortex-M4 cycle estimate (None: not predictable, `estimate_notes` say why)
    cycles_estimate: dict[str, float | None] = field(default_factory=dict)
    estimate_notes: tuple[str, ...] = field(default=())
    harness_ram: int | None = None  # the validation harness's own share (None: no harness records)
    harness_flash: int | None = None

    @property
    def ram_total(self) -> int:
        return sum(self.ram.values())

    @property
    def flash_total(self) -> int:
        return sum(self.flash.values())

    def cost(self, name: str) -> float | None:
        if name.startswith("instructions."):
            return self.instructions.get(name.split(".", 1)[1])
        if name.startswith(f"{ESTIMATE}."):
            return self.cycles_estimate.get(name.split(".", 1)[1])
        if name in HARNESS_METRICS.values():
            value = self.harness_ram if name == "harness_ram" else self.harness_flash
            return None if value is None else float(value)
        return float(self.ram_total if name in ("deployed_ram", "peak_ram") else self.flash_total)


# --- fitting -----------------------------------------------------------------------------------------------------

def _workload(rec: RunRecord) -> Workload:
    return _cached_workload(rec.config, rec.classes)


@lru_cache(maxsize=None)
def _cached_workload(config, classes: int) -> Workload:
    """Shared, so never modified by its users: cross-validation asks for the same records' workloads per fold."""
    return workload_from_config(config, classes)


@lru_cache(maxsize=None)
def _count_row(phase: str, config, classes: int, epochs: float, test: int, best_epoch: float,
               kind: str = "portable") -> tuple[float, ...]:
    """A record's counts of `phase` in fm.COUNTS order, on a board of `kind` (models.kernels.board_kind).
    Cached: cross-validation refits the same records once per left-out shape (80+ times), and building workloads and
    counts was nearly all of its time."""
    counts = fm.instruction_counts(phase, workload_from_config(config, classes), epochs, test, best_epoch, kind)
    return tuple(counts[k] for k in fm.COUNTS[phase])


def shape_key(w: Workload) -> str:
    """The compile-time constants the trainer's code depends on, besides the sample count (which it does not:
    firmware/c/microtl.c keeps the step out of line for that): model and cut (feature width), hidden width,
    batch size, classes, and the mode (streaming's step, compiled for batch 1, and its loop are other code)."""
    hidden = w.head[0][1] if len(w.head) > 1 else 0
    return f"{w.model}/{w.cut}/h{hidden}/b{w.batch}/c{w.head[-1][1]}{'/streaming' if w.streaming else ''}"


TRAINING = "training"


def deployed_view(runs: list[RunRecord]) -> list[RunRecord]:
    """`runs` plus, for every run measured without a deployed ELF, its deployed_ram / deployed_flash derived from
    the validation ELF's figures: flash less the inputs that build stored in place of a sensor, RAM plus the
    sensor buffer and labels it did not have (the harness's own share, ~0.1-2 KB, stays in: those rows price the
    deployed image a little high). Idempotent."""
    have = {(r.key, r.metric) for r in runs}
    extra = []
    for r in runs:
        for metric, legacy in LEGACY_METRICS.items():
            if r.metric != legacy or (r.key, metric) in have:
                continue
            w = _workload(r)
            if metric == "deployed_flash":
                value = r.value - fm.stored_inputs_bytes(w, r.test)
            else:
                terms = fm.ram_terms(w)
                value = r.value + terms["sensor_input"] + terms["labels"]
            extra.append(replace(r, metric=metric, value=float(value)))
    return [*runs, *extra]


def fit_firmware(runs: list[RunRecord], board: str, *, files: tuple[str, ...] = (),
                 digest: str = "") -> FirmwareCalibration:

    if not runs:
        raise FirmwareCalibrationError(f"board {board!r}: no run records to fit")
    runs = deployed_view(runs)
    for rec in runs:
        if rec.board != board:
            raise FirmwareCalibrationError(f"{rec.where}, column board: {rec.board!r} in the calibration of "
                                           f"{board!r}")
    notes: list[str] = []
    instructions, status = _fit_target(INSTRUCTIONS, runs, notes)
    estimate_rows = [r for r in runs if r.metric == ESTIMATE]
    if estimate_rows:
        estimate, estimate_status = _fit_target(ESTIMATE, runs, notes)
    else:  # records written before the campaign recorded the estimate
        estimate, estimate_status = {}, {}
        notes.append(f"{ESTIMATE}: no estimate records; the static cycle estimate is not predicted")
    memory = {m: _fit_memory(m, [r for r in runs if r.metric == metric], notes)
              for m, metric in MEMORY_METRICS.items()}
    for m, metric in HARNESS_METRICS.items():  # the harness's share: a constant, the mean of what runs measured
        values = [r.value for r in runs if r.metric == metric]
        if values:
            memory[m][fm.HARNESS] = float(sum(values) / len(values))
        else:
            notes.append(f"{metric}: no records; the validation harness's share is not predicted")
    cal = FirmwareCalibration(board=board, version=VERSION, digest=digest, files=files,
                              runs=len({r.key for r in runs}), instructions=instructions, status=status,
                              ram=memory["ram"], flash=memory["flash"], notes=tuple(notes),
                              cycles_estimate=estimate, cycles_estimate_status=estimate_status,
                              estimate_cpi=_estimate_cpi(runs), estimate_source=_estimate_source(estimate_rows),
                              estimate_runs=len({r.key for r in estimate_rows}))
    factors = {}
    for target in TARGETS:
        factors[target] = _shape_factors(cal, [r for r in runs if r.cost == f"{target}.{TRAINING}"], target)
        if factors[target]:
            f = factors[target]
            notes.append(f"{TRAINING} {target}: factors of {len(f)} compiled shapes (measured / counts model, mean "
                         f"over each shape's runs): {min(f.values()):.4f} to {max(f.values()):.4f}")
    return replace(cal, notes=tuple(notes), shape_factors=factors[INSTRUCTIONS],
                   estimate_shape_factors=factors[ESTIMATE])


def _fit_target(metric: str, runs: list[RunRecord], notes: list[str]) -> tuple[dict, dict]:
    """Per phase, NNLS of the rows of `metric` (instructions or cycles_estimate) on the phase's counts in relative
    residuals; a count no row exercises stays unobserved (a prediction that needs it is refused)."""

    coefficients, status = {}, {}
    for phase in PHASES:
        rows = [r for r in runs if r.metric == metric and r.phase == phase]
        names = fm.COUNTS[phase]
        coefficients[phase] = dict.fromkeys(names, 0.0)
        status[phase] = dict.fromkeys(names, "unobserved")
        if not rows:
            notes.append(f"{phase}: no {metric} records; the phase's {metric} is not predicted")
            continue
        X = np.array([_count_row(phase, r.config, r.classes, r.epochs_run, r.test, r.copies, board_kind(r.board))
                      for r in rows])
        y = np.array([r.value for r in rows])
        coef = _nnls(X, y, relative=True)
        for j, name in enumerate(names):
            if X[:, j].any():
                coefficients[phase][name] = float(coef[j])
                status[phase][name] = "fitted"
    return coefficients, status


def _estimate_cpi(runs: list[RunRecord]) -> dict[str, list[float]]:
    """Per phase, the estimated cycles per instruction of the runs that recorded both: [min, mean, max]."""
    insns = {(r.key, r.phase): r.value for r in runs if r.metric == INSTRUCTIONS}
    out = {}
    for phase in PHASES:
        cpi = [r.value / insns[(r.key, phase)] for r in runs
               if r.metric == ESTIMATE and r.phase == phase and insns.get((r.key, phase))]
        if cpi:
            out[phase] = [min(cpi), sum(cpi) / len(cpi), max(cpi)]
    return out


def _estimate_source(rows: list[RunRecord]) -> str:
    """The estimate's assumptions as the records state them (the emulator column after the QEMU version); the most
    common one when the records differ."""
    sources: dict[str, int] = {}
    for r in rows:
        text = r.emulator.split("; ", 1)[1] if "; " in r.emulator else r.emulator
        sources[text] = sources.get(text, 0) + 1
    return max(sources, key=sources.get) if sources else ""


def _shape_factors(cal: FirmwareCalibration, rows: list[RunRecord], target: str = INSTRUCTIONS) -> dict[str, float]:
    ratios: dict[str, list[float]] = {}
    for r in rows:
        w = _workload(r)
        predicted = _counts_model(cal, target, TRAINING, w, r.epochs_run, r.test, r.copies)
        if predicted:
            ratios.setdefault(shape_key(w), []).append(r.value / predicted)
    return {k: sum(v) / len(v) for k, v in sorted(ratios.items())}


def _fit_memory(metric: str, rows: list[RunRecord], notes: list[str]) -> dict[str, float]:
    groups = fm.GROUPS[metric]
    scales = {g: (1.0 if g in fm.FIXED_GROUPS else 0.0 if g in fm.CONSTANT_GROUPS else 1.0) for g in groups}
    if not rows:
        notes.append(f"{metric}: no records; terms as allocated, constants 0")
        return scales
    free = [g for g in groups if g not in fm.FIXED_GROUPS]
    bytes_ = [fm.terms(metric, _workload(r), r.test) for r in rows]
    X = np.array([[sum(b[t] for t in groups[g]) for g in free] for b in bytes_], dtype=float)
    y = np.array([r.value - sum(b[t] for g in fm.FIXED_GROUPS if g in groups for t in groups[g])
                  for r, b in zip(rows, bytes_)])
    coef = _nnls(X, y, relative=False)
    for j, g in enumerate(free):
        scales[g] = float(coef[j]) if X[:, j].any() else scales[g]
    rank = np.linalg.matrix_rank(X[:, X.any(axis=0)])
    if rank < int(X.any(axis=0).sum()):
        notes.append(f"{metric}: the records determine {rank} of {int(X.any(axis=0).sum())} observed groups; "
                     "NNLS splits the bytes of dependent groups (their sum is what the records test)")
    return scales


def _nnls(X, y, relative: bool):
    """Non-negative least squares on unit-normalised columns (all-zero columns get 0). For exact emulator counts
    every observed column enters: NNLS resolves dependent columns itself, and dropping a column the data cannot
    separate would bias the prediction when its true coefficient differs from its stand-in's."""

    w = 1.0 / np.abs(y) if relative else np.ones_like(y)
    A = X * w[:, None]
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    c, _ = nnls(A / scale, y * w, maxiter=50 * X.shape[1])
    return c / scale


# --- predicting --------------------------------------------------------------------------------------------------

def price_firmware(cal: FirmwareCalibration, w: Workload, epochs: float, test: int,
                   best_epoch: float | None = None) -> FirmwarePrediction:
    """The pure predictor: counts + calibration -> instructions and the static cycle estimate per phase (training:
    times the shape's factor when the records have runs of the shape) and bytes per term of the deployed image, with
    the validation harness's own share apart."""
    notes, estimate_notes = [], []
    instructions = {p: _predict_target(cal, INSTRUCTIONS, p, w, epochs, test, best_epoch, notes) for p in PHASES}
    estimate = {p: _predict_target(cal, ESTIMATE, p, w, epochs, test, best_epoch, estimate_notes)
                for p in PHASES}
    memory, harness = {}, {}
    for metric in ("ram", "flash"):
        scales = getattr(cal, metric)
        raw = fm.terms(metric, w, test)
        # a group a calibration predates: fixed groups are the bytes the C declares (scale 1)
        memory[metric] = {t: round(n * scales.get(g, 1.0 if g in fm.FIXED_GROUPS else 0.0))
                          for g, members in fm.GROUPS[metric].items() for t in members for n in (raw[t],)}
        harness[metric] = round(scales[fm.HARNESS]) if fm.HARNESS in scales else None
    if w.streaming and cal.status.get(TRAINING, {}).get("stream_samples") != "fitted":
        notes.append(f"streaming: {cal.board} calibration has no streaming runs; streaming's own RAM and flash "
                     "constants (stream_runtime, stream_code, ring_code) are not fitted")
    return FirmwarePrediction(instructions, memory["ram"], memory["flash"], tuple(notes), estimate,
                              tuple(estimate_notes), harness_ram=harness["ram"], harness_flash=harness["flash"])


def _predict_target(cal: FirmwareCalibration, target: str, phase: str, w: Workload, epochs: float, test: int,
                    best_epoch: float | None, notes: list[str]) -> float | None:
    what = "instruction" if target == INSTRUCTIONS else "cycle estimate"
    status = cal.statuses(target).get(phase, {})
    if all(s == "unobserved" for s in status.values()):
        notes.append(f"{phase}: no {what} records on {cal.board}")
        return None
    counts = fm.instruction_counts(phase, w, epochs, test, best_epoch, board_kind(cal.board))
    # a count the calibration does not know (a snapshot of an older counts model) is unobserved too
    missing = [k for k, n in counts.items() if n and status.get(k, "unobserved") == "unobserved"
               and k not in ("constant",)]
    if missing:
        notes.append(f"{phase}: no {what} record exercises {', '.join(missing)}" if target == ESTIMATE else
                     f"{phase}: no calibration record exercises {', '.join(missing)}")
        return None
    factor = cal.factors(target).get(shape_key(w), 1.0) if phase == TRAINING else 1.0
    return factor * _counts_model(cal, target, phase, w, epochs, test, best_epoch)


def _counts_model(cal: FirmwareCalibration, target: str, phase: str, w: Workload, epochs: float, test: int,
                  best_epoch: float | None) -> float:
    """The counts model alone (no shape factor)."""
    counts = fm.instruction_counts(phase, w, epochs, test, best_epoch, board_kind(cal.board))
    coefficients = cal.coefficients(target)[phase]
    return float(sum(coefficients[k] * n for k, n in counts.items()))



def predict_run(cal: FirmwareCalibration, rec: RunRecord) -> float | None:
    return price_firmware(cal, _workload(rec), rec.epochs_run, rec.test, rec.copies).cost(rec.cost)


# --- loading and snapshots ---------------------------------------------------------------------------------------

def load_firmware_calibration(board, directory: str | Path | tuple[Path, ...] | None = None) -> FirmwareCalibration:
    """Fit from the run records of `directory` (default: the board's shipped records with the user's on top,
    `BoardSpec.calibration_dirs`); cached."""
    name = board if isinstance(board, str) else board.name
    if directory is None:
        directory = (board if not isinstance(board, str) else load_board(name)).calibration_dirs
    dirs = tuple(Path(d).resolve() for d in directory) if isinstance(directory, tuple) else \
        (Path(directory).resolve(),)
    return _cached(name, dirs)


def clear_firmware_cache() -> None:
    _cached.cache_clear()


def record_files(directory: Path | tuple[Path, ...]) -> list[Path]:
    """The *.csv records of a folder, or of folders layered (cost_models.user_data: the user's replace the
    shipped ones of the same name)."""

    return layered_files(directory if isinstance(directory, tuple) else (Path(directory),))


@lru_cache(maxsize=8)
def _cached(board: str, directory: tuple[Path, ...]) -> FirmwareCalibration:
    files = record_files(directory)
    if not files:
        raise FirmwareCalibrationError(f"board {board!r} has no run records: no *.csv in "
                                       f"{' or '.join(map(str, directory))} (run `dse calibrate --board {board}`)")
    runs = [r for p in files for r in load_runs(p)]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()
    return fit_firmware(runs, board, files=tuple(p.name for p in files), digest=digest)


def save_firmware_calibration(cal: FirmwareCalibration, path: str | Path) -> None:
    """Atomically (a temporary file in the same folder, then os.replace)."""

    with replacing(path) as tmp:
        tmp.write_text(json.dumps(cal.to_dict(), indent=1) + "\n")


def read_firmware_calibration(path: str | Path) -> FirmwareCalibration:
    try:
        return FirmwareCalibration.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FirmwareCalibrationError(f"{path}: not a firmware calibration snapshot ({exc})") from None
