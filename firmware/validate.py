"""Validation: one trial of a study -> generate the firmware for its configuration, build it for a board, run it,
parse its output and compare what the board measured with what the study predicted -> a validation record.

The firmware runs repeat 0 of the study seed: the same sample draw and head seed as the trial's per_repeat[0]
simulated accuracy, so the board's accuracy is compared with the simulation of exactly that draw.

The record is written atomically to DIR/validations/trial-<N>-<board>.json and into the study's storage as the
study user attribute `validation/<board>/trial-<N>` (for calibration). A validation that fails (does not fit,
timeout, protocol error, board unavailable, ...) is recorded too, with status "failed" and a one-line reason.
User mistakes (an unknown trial or board) raise dse.errors.UserError and record nothing.
"""
from __future__ import annotations

import datetime as _dt
import math
import platform as _platform
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dse.errors import UserError

from .records import (NOT_PREDICTED, PHASES, STATUS_FAILED, STATUS_OK, Measured, Predicted, Provenance,
                      ValidationRecord, relative_error, write_record)

VALIDATIONS_DIR = "validations"
WORK_DIR = "work"
HOST_TIMEOUT_S = 300.0  # the host board: a fixed, generous bound (a native process runs any pick in seconds)
ACCURACY_TOLERANCE_PP = 3.0  # the board's accuracy should be within this of the simulation of the same draw

# The instruction bound behind the run timeout: operations of the configuration (frozen-layer MACs, written
# outputs and compares per sample, head MACs and updates per epoch, test forward passes) x instructions per
# operation x a safety factor, plus a fixed allowance for start-up (stack painting) and output. Measured on
# qemu-an386 the firmware retires 8.1-8.6 instructions per counted operation (tiny study, both cuts, heads 0 and 8);
# 16 per operation x 2 is four times that, and qemu's timeout_for adds its own margin for emulation speed.
INSTRUCTIONS_PER_OP = 16
SAFETY = 2
FIXED_INSTRUCTIONS = 20_000_000

Progress = Callable[[str], None]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the trial ------------------------------------------------------------------------------------------------------

@dataclass
class TrialInfo:
    study: Any  # optuna.Study (read-write: records go into its user attributes)
    spec: Any  # dse.studyfile.StudySpec
    number: int
    config: Any  # models.config.Configuration
    accuracy: dict  # the trial's accuracy attribute (mean, std, per_repeat, epochs_per_repeat, ...)
    predicted: dict  # the trial's flat prediction attribute


def load_trial(folder: str | Path, number: int, loaded=None) -> TrialInfo:
    """The study, its spec and trial `number`'s configuration from the study's storage."""
    from dse.folder import StudyFolder
    from dse.search import ATTR_ACCURACY, ATTR_CONFIG, ATTR_PREDICTED
    from models.config import Configuration

    study, spec = loaded if loaded is not None else StudyFolder(folder).load()
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        known = f"trials 0-{max(trials)}" if trials else "no trials yet"
        raise UserError(f"{folder}: study {spec.name!r} has no trial {number} ({known})")
    trial = trials[number]
    if ATTR_CONFIG not in trial.user_attrs:
        raise UserError(f"{folder}: trial {number} has no stored configuration (state {trial.state.name})")
    try:
        config = Configuration.from_dict(trial.user_attrs[ATTR_CONFIG])
    except (TypeError, ValueError) as exc:
        raise UserError(f"{folder}: trial {number}: unreadable configuration ({exc})") from None
    return TrialInfo(study, spec, number, config, dict(trial.user_attrs.get(ATTR_ACCURACY, {})),
                     dict(trial.user_attrs.get(ATTR_PREDICTED, {})))


def pick_numbers(folder: str | Path, count: int, loaded=None) -> list[int]:
    """The first `count` Pareto picks as `dse show` lists them (feasible, best accuracy first, each configuration
    once)."""
    from dse.folder import StudyFolder
    from dse.report import picks, trial_table

    study, spec = loaded if loaded is not None else StudyFolder(folder).load()
    chosen = picks(trial_table(study, spec), spec, unique=True)
    if not len(chosen):
        raise UserError(f"{folder}: study {spec.name!r} has no feasible Pareto pick to validate")
    return [int(n) for n in chosen["number"][:count]]


def get_board(name: str, **options):
    """The board called `name` (UserError for an unknown name); options (e.g. the nrf52840dk's ppk2 port) go to
    its constructor, None values left out."""
    from .boards import get_board as _get

    try:
        return _get(name, **{k: v for k, v in options.items() if v is not None})
    except ValueError as exc:
        raise UserError(str(exc)) from None


# --- bounds ---------------------------------------------------------------------------------------------------------

def operation_count(config, classes: int | None, test_count: int) -> float:
    """Operations of one firmware run: N forward passes to the cut, epochs x head training (full budget: early
    stopping only shortens it), T test forward passes (frozen layers + head)."""
    from cost_models.latency import training_counts
    from cost_models.workload import workload_from_config

    w = workload_from_config(config, classes)
    frozen = w.input_elements + sum(layer.macs + layer.elements + layer.compares for layer in w.layers[1:])
    training = sum(training_counts(w, float(config.epochs)).values())
    return frozen * config.samples + training + (frozen + w.head_macs) * test_count


def instruction_upper_bound(config, classes: int | None, test_count: int) -> int:
    """A generous bound on the instructions one run retires (see INSTRUCTIONS_PER_OP, SAFETY)."""
    ops = operation_count(config, classes, test_count)
    return int(SAFETY * (INSTRUCTIONS_PER_OP * ops + FIXED_INSTRUCTIONS))


def run_timeout(board, bound: int) -> float:
    """Seconds to let the board run: from the instruction bound where the board can say (qemu: emulation speed;
    nrf52840dk: clock rate plus flashing), a fixed generous timeout on the host."""
    if board.name == "host":
        return HOST_TIMEOUT_S
    timeout_for = getattr(board, "timeout_for", None)
    if timeout_for is None:
        from .boards.qemu import timeout_for
    return float(timeout_for(bound))


# --- comparing ------------------------------------------------------------------------------------------------------

def predicted_values(info: TrialInfo, epochs_of_draw: int | None) -> Predicted:
    """The study's predictions for the trial: simulated accuracy of repeat 0 (the draw the firmware runs), RAM and
    flash, and per-phase time and energy re-priced for the epochs that draw ran (the stored prediction is for the
    mean over repeats)."""
    per_repeat = info.accuracy.get("per_repeat") or []
    predicted = Predicted(board=info.spec.board, accuracy=float(per_repeat[0]) if per_repeat else None,
                          accuracy_mean=info.accuracy.get("mean"), epochs_run=epochs_of_draw,
                          instructions=NOT_PREDICTED)
    prediction = None
    try:
        from dse.evaluate import price

        epochs = epochs_of_draw if epochs_of_draw else None
        prediction = price(info.config, info.spec.board, epochs, info.spec.task.classes)
    except Exception as exc:  # noqa: BLE001 - fall back on what the study stored
        predicted.notes.append(f"re-pricing failed ({type(exc).__name__}: {exc}); stored prediction used")
    if prediction is not None:
        predicted.ram_total, predicted.flash_total = int(prediction.ram_total), int(prediction.flash_total)
        for phase, cost in prediction.phases.items():
            predicted.cycles[phase] = cost.cycles
            predicted.seconds[phase] = cost.seconds
            predicted.energy_mj[phase] = cost.energy_mj
        predicted.notes += list(prediction.notes)
        if epochs_of_draw:
            predicted.notes.append(f"time and energy priced for the {epochs_of_draw} epochs this draw ran in "
                                   "simulation")
    else:
        stored = info.predicted
        predicted.ram_total = stored.get("ram_total")
        predicted.flash_total = stored.get("flash_total")
        for phase in PHASES:
            if f"cycles.{phase}" in stored:
                predicted.cycles[phase] = stored[f"cycles.{phase}"]
                predicted.seconds[phase] = stored.get(f"time.{phase}_s")
                predicted.energy_mj[phase] = stored.get(f"energy.{phase}_mj")
    predicted.notes.append("instructions: not predicted (the cost models have no instruction model yet)")
    return predicted


def errors_of(measured: Measured, predicted: Predicted, board_name: str) -> dict[str, float]:
    """measured vs predicted: accuracy in percentage points, the rest relative."""
    out: dict[str, float] = {}
    if measured.accuracy is not None and predicted.accuracy is not None:
        out["accuracy_pp"] = 100.0 * (measured.accuracy - predicted.accuracy)
    if board_name != "host":  # the host executable's sizes are not the board's
        for key, m, p in (("ram_total", measured.peak_ram_bytes, predicted.ram_total),
                          ("flash_total", measured.flash_bytes, predicted.flash_total)):
            e = relative_error(m, p)
            if e is not None:
                out[key] = e
    if board_name == "host":  # nor is its clock the board's
        return out
    for phase in PHASES:
        for key, m, p in ((f"cycles.{phase}", (measured.cycles or {}).get(phase), predicted.cycles.get(phase)),
                          (f"seconds.{phase}", (measured.seconds or {}).get(phase), predicted.seconds.get(phase)),
                          (f"energy_mj.{phase}", (measured.energy_mj or {}).get(phase),
                           predicted.energy_mj.get(phase))):
            e = relative_error(m, p)
            if e is not None:
                out[key] = e
    return out


# --- the validation -------------------------------------------------------------------------------------------------

def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def host_description() -> str:
    return f"{socket.gethostname()} ({_platform.platform()}, Python {_platform.python_version()})"


def validate_trial(folder: str | Path, number: int, board, *, timeout_s: float | None = None,
                   progress: Progress | None = say, loaded=None, info: TrialInfo | None = None,
                   store: bool = True) -> ValidationRecord:
    """Validate trial `number` of the study in `folder` on `board` (a board object or name). Returns the record
    (status "ok" or "failed"); raises UserError for an unknown trial or board."""
    folder = Path(folder)
    if isinstance(board, str):
        board = get_board(board)
    info = info or load_trial(folder, number, loaded)
    tell = progress or (lambda message: None)
    who = f"trial {number} on {board.name}"
    record = ValidationRecord(study=info.spec.name, trial=number, board=board.name, status=STATUS_FAILED,
                              configuration=info.config.to_dict(),
                              provenance=Provenance(date_utc=_dt.datetime.now(_dt.timezone.utc)
                                                    .isoformat(timespec="seconds"),
                                                    host=host_description()))
    record.predicted = predicted_values(info, _epochs_of_draw(info))
    work = folder / VALIDATIONS_DIR / WORK_DIR / f"trial-{number}-{board.name}"
    try:
        _run(record, info, board, work, timeout_s, tell, who)
        record.status = STATUS_OK
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded, one-line reason
        record.status = STATUS_FAILED
        record.reason = _reason(exc)
        if _is_unexpected(exc):
            work.mkdir(parents=True, exist_ok=True)
            (work / "traceback.txt").write_text("".join(traceback.format_exception(exc)))
            record.notes.append(f"unexpected error; traceback in {work / 'traceback.txt'}")
        tell(f"dse: {who}: failed: {record.reason}")
    record.errors = errors_of(record.measured, record.predicted, board.name)
    if record.ok:
        _check(record)
    if store:
        save(record, folder, info.study)
    return record


def _epochs_of_draw(info: TrialInfo) -> int | None:
    epochs = info.accuracy.get("epochs_per_repeat") or []
    return int(epochs[0]) if epochs else None


def _reason(exc: BaseException) -> str:
    from .build import BuildError
    from .protocol import ProtocolError

    if isinstance(exc, (BuildError, ProtocolError, UserError)):
        return _one_line(exc)  # messages written for the user ("does not fit: RAM over by N bytes", ...)
    name = type(exc).__name__
    if name in ("FirmwareTimeout", "BoardError", "BoardUnavailable", "QemuUnavailable", "FirmwareFailed"):
        return _one_line(exc)
    return f"{name}: {_one_line(exc)}"


def _is_unexpected(exc: BaseException) -> bool:
    from .build import BuildError
    from .protocol import ProtocolError

    known = ("FirmwareTimeout", "BoardError", "BoardUnavailable", "QemuUnavailable", "FirmwareFailed")
    return not isinstance(exc, (BuildError, ProtocolError, UserError)) and type(exc).__name__ not in known


class FirmwareFailed(RuntimeError):
    """The firmware ran but reported failure (non-zero exit, a fault, a non-zero done status)."""


class BoardUnavailable(RuntimeError):
    """The board cannot run anything here (no probe, no emulator); the message says what to do."""


def _run(record: ValidationRecord, info: TrialInfo, board, work: Path, timeout_s: float | None, tell: Progress,
         who: str) -> None:
    from .build import build
    from .codegen import generate
    from .protocol import parse

    ok, why = board.available()
    if not ok:
        raise BoardUnavailable(why)
    m, prov = record.measured, record.provenance
    task = info.spec.task

    t = time.monotonic()
    gen = generate(info.config, work / "gen", repeat=0, seed=info.spec.seed, data_path=task.data,
                   source_labels=task.source_labels, target_labels=task.target_labels)
    m.wall_s["generate"] = time.monotonic() - t
    prov.sources_sha256 = gen.sha256
    m.features_expected_fnv = f"0x{gen.expected_fnv1a:08x}"
    if record.predicted.accuracy is not None and not math.isclose(gen.simulated_accuracy, record.predicted.accuracy,
                                                                  abs_tol=1e-9):
        record.notes.append(f"codegen's simulation of the draw gives accuracy {gen.simulated_accuracy:.4f}, the "
                            f"study stored {record.predicted.accuracy:.4f}")
    if record.predicted.accuracy is None:
        record.predicted.accuracy = float(gen.simulated_accuracy)
    if record.predicted.epochs_run is None:
        record.predicted.epochs_run = int(gen.simulated_epochs_run)
    tell(f"dse: {who}: generated {gen.n_samples} samples + {gen.n_test} test inputs "
         f"({m.wall_s['generate']:.1f} s)")

    t = time.monotonic()
    target = getattr(board, "target", "cortex-m4")
    platform = getattr(board, "platform", None)
    try:
        binary = build(gen, target, work / "build", platform=platform) if platform else build(gen, target,
                                                                                               work / "build")
    finally:
        m.wall_s["build"] = time.monotonic() - t
    m.flash_bytes, m.static_ram_bytes = int(binary.flash_bytes), int(binary.static_ram_bytes)
    prov.elf_sha256, prov.toolchain = binary.elf_sha256, binary.toolchain_version
    tell(f"dse: {who}: built {Path(binary.path).name}: flash {m.flash_bytes / 1024:.1f} KB, static RAM "
         f"{m.static_ram_bytes / 1024:.1f} KB ({m.wall_s['build']:.1f} s)")

    if timeout_s is None:
        timeout_s = run_timeout(board, instruction_upper_bound(info.config, task.classes, gen.n_test))
    t = time.monotonic()
    try:
        result = board.run(binary, timeout_s)
    finally:
        m.wall_s["run"] = time.monotonic() - t
    prov.board_versions = {str(k): str(v) for k, v in (getattr(result, "versions", None) or {}).items()}
    text = getattr(result, "stdout_raw", None)
    if text is None:
        text = "\n".join(getattr(result, "lines", []) or [])
    report = parse(text, cycles_are_ns=board.name == "host")
    if getattr(result, "exit_code", 0) not in (0, None) or report.status != 0:
        raise FirmwareFailed(f"{board.name}: firmware exited with status {getattr(result, 'exit_code', None)} "
                             f"(done status {report.status})")
    _measured_from(record, report, result, gen, board)
    tell(f"dse: {who}: ran: accuracy {100 * m.accuracy:.1f}% (simulated {100 * record.predicted.accuracy:.1f}%), "
         f"{m.epochs_run} epochs ({m.wall_s['run']:.1f} s)")


def _measured_from(record: ValidationRecord, report, result, gen, board) -> None:
    m = record.measured
    m.correct, m.test = int(report.correct), int(report.test_count)
    m.accuracy = report.correct / report.test_count if report.test_count else None
    m.epochs_run, m.best_epoch = int(report.epochs_run), int(report.best_epoch)
    m.features_fnv = f"0x{report.features_fnv1a:08x}"
    m.features_match = report.features_fnv1a == gen.expected_fnv1a
    m.stack_bytes, m.heap_bytes = report.stack_bytes, report.heap_bytes
    if m.stack_bytes is not None and m.heap_bytes is not None and m.static_ram_bytes is not None:
        m.peak_ram_bytes = m.static_ram_bytes + m.stack_bytes + m.heap_bytes
    instructions = {k: int(v) for k, v in (getattr(result, "instructions", None) or {}).items() if v is not None}
    m.instructions = instructions or None
    if report.cycles:
        m.cycles = {k: int(v) for k, v in report.cycles.items()}
        m.cycles_source = "DWT->CYCCNT"
        clock = getattr(board, "clock_hz", None)
        if clock:
            m.seconds = {k: v / clock for k, v in m.cycles.items()}
    elif report.host_ns:
        m.seconds = {k: v / 1e9 for k, v in report.host_ns.items()}
        m.cycles_source = "host clock (ns); no cycle counter"
    energy = getattr(result, "energy_mj", None)
    if energy:
        m.energy_mj = {k: float(v) for k, v in energy.items()}
        m.energy_source = getattr(result, "energy_source", None)
    if board.name == "host":
        record.notes.append("host board: flash and static RAM are the host executable's (not comparable with the "
                            "board's); stack and heap are not measurable there")


def _check(record: ValidationRecord) -> None:
    m, p = record.measured, record.predicted
    if m.features_match is False:
        record.notes.append(f"features differ from the Python integer reference (FNV {m.features_fnv} vs "
                            f"{m.features_expected_fnv})")
    if m.accuracy is not None and p.accuracy is not None and \
            abs(100 * (m.accuracy - p.accuracy)) > ACCURACY_TOLERANCE_PP:
        record.notes.append(f"accuracy on the board differs from the simulation of the same draw by "
                            f"{100 * (m.accuracy - p.accuracy):+.1f} points (more than {ACCURACY_TOLERANCE_PP:g})")
    if m.epochs_run is not None and p.epochs_run is not None and m.epochs_run != p.epochs_run:
        record.notes.append(f"the board ran {m.epochs_run} epochs, the simulation of the draw {p.epochs_run}")


def save(record: ValidationRecord, folder: str | Path, study) -> Path:
    """The record into DIR/validations/ (atomic) and into the study storage as a study user attribute."""
    path = write_record(record, Path(folder) / VALIDATIONS_DIR)
    study.set_user_attr(record.key, record.to_dict())
    return path


def stored_validations(study) -> dict[str, dict]:
    """Every validation record stored with a study: attribute key -> record dict."""
    return {k: v for k, v in study.user_attrs.items() if k.startswith("validation/")}


# --- the terminal table ---------------------------------------------------------------------------------------------

def _kb(n) -> str:
    return "" if n is None else f"{n / 1024:.1f}"


def _pct(e) -> str:
    return "" if e is None else f"{100 * e:+.1f}%"


def _grouped(n) -> str:
    return "" if n is None else f"{int(n):,}"


def _sig(x, fmt: str = ".4g") -> str:
    return "" if x is None else format(x, fmt)


def validation_table(records: list[ValidationRecord]) -> str:
    """Measured against predicted, one block per record."""
    from dse.tables import text_table

    blocks = []
    for r in records:
        c = r.configuration
        title = (f"trial {r.trial} of {r.study} on {r.board}: {r.status}"
                 f"{': ' + r.reason if r.reason else ''} (cut {c.get('cut')}, hidden {c.get('hidden')}, "
                 f"{c.get('samples')} samples, {c.get('epochs')} epochs, batch {c.get('batch')}, "
                 f"lr {_sig(c.get('lr'), '.3g')})")
        m, p, e = r.measured, r.predicted, r.errors
        rows = []
        if m.accuracy is not None or p.accuracy is not None:
            rows.append(["accuracy (%)", _sig(None if m.accuracy is None else 100 * m.accuracy, ".1f"),
                         _sig(None if p.accuracy is None else 100 * p.accuracy, ".1f"),
                         "" if "accuracy_pp" not in e else f"{e['accuracy_pp']:+.1f} pp",
                         "simulated, same draw"])
        if m.epochs_run is not None:
            rows.append(["epochs run", str(m.epochs_run), _sig(p.epochs_run, "d"), "", "simulated, same draw"])
        if m.features_fnv is not None:
            rows.append(["features FNV-1a", m.features_fnv, m.features_expected_fnv or "",
                         "match" if m.features_match else "DIFFER", "integer reference"])
        host = r.board == "host"
        if m.peak_ram_bytes is not None or p.ram_total is not None:
            detail = ""
            if m.static_ram_bytes is not None:
                detail = (f"static {_kb(m.static_ram_bytes)} + stack {_kb(m.stack_bytes) or '?'} + heap "
                          f"{_kb(m.heap_bytes) or '?'} KB")
            rows.append(["peak RAM (KB)", _kb(m.peak_ram_bytes), _kb(p.ram_total), _pct(e.get("ram_total")),
                         detail + (" (host executable)" if host else "")])
        if m.flash_bytes is not None or p.flash_total is not None:
            rows.append(["flash (KB)", _kb(m.flash_bytes), _kb(p.flash_total), _pct(e.get("flash_total")),
                         "from the ELF" + (" (host executable)" if host else "")])
        for phase in PHASES:
            if m.instructions and phase in m.instructions:
                rows.append([f"instructions {phase}", _grouped(m.instructions[phase]), NOT_PREDICTED, "",
                             "qemu plugin, exact"])
        for phase in PHASES:
            mc, pc = (m.cycles or {}).get(phase), p.cycles.get(phase)
            if mc is not None:
                rows.append([f"cycles {phase}", _grouped(mc), "uncalibrated" if pc is None else _grouped(pc),
                             _pct(e.get(f"cycles.{phase}")), m.cycles_source or ""])
        for phase in PHASES:
            ms, ps = (m.seconds or {}).get(phase), p.seconds.get(phase)
            if ms is not None:
                rows.append([f"time {phase} (s)", _sig(ms), "uncalibrated" if ps is None else _sig(ps),
                             _pct(e.get(f"seconds.{phase}")), "host clock, not the board's" if host else ""])
        for phase in PHASES:
            me, pe = (m.energy_mj or {}).get(phase), p.energy_mj.get(phase)
            if me is not None:
                rows.append([f"energy {phase} (mJ)", _sig(me), "uncalibrated" if pe is None else _sig(pe),
                             _pct(e.get(f"energy_mj.{phase}")), "PPK2"])
        lines = [title]
        if rows:
            lines.append(text_table(["measure", "measured", "predicted", "error", "note"], rows, indent="  "))
        if m.wall_s:
            lines.append("  wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in m.wall_s.items()))
        lines += [f"  note: {n}" for n in r.notes]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
