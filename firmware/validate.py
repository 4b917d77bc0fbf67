"""Validation, the firmware half: one configuration -> generate its firmware, build it for a board, run it, parse
its output -> a validation record of what the board measured next to the predictions the caller hands in.

The caller (dse.commands.validation) knows the study: it chooses the trial, the sample draw (repeat, seed, data), the
predictions and the instruction bound behind the time limit, and stores the record. Keeping that out of here keeps
data flowing one way: firmware turns a configuration into a binary and a binary into measurements.

A validation that fails (does not fit, timeout, protocol error, board unavailable, ...) is returned too, with
status "failed" and a one-line reason; only KeyboardInterrupt escapes.
"""
from __future__ import annotations

import copy
import datetime as _dt
import functools
import math
import platform as _platform
import socket
import time
import traceback
from pathlib import Path
from typing import Callable

from vocabulary.configuration import Configuration
from vocabulary.phases import PHASES
from vocabulary.validation_record import (STATUS_FAILED, STATUS_OK, Measured, Predicted, Provenance,
                                          ValidationRecord)

from .boards.base import Board, BoardError, RunResult
from .build import BuildError, build
from .codegen import GeneratedSources, generate
from .protocol import FirmwareReportedError, ProtocolError, Report
from .records import relative_error

ACCURACY_TOLERANCE_PP = 3.0  # the board's accuracy should be within this of the simulation of the same draw

Progress = Callable[[str], None]
InstructionBound = Callable[[int], int]  # test inputs of the generated draw -> instructions one run may retire


class FirmwareFailed(RuntimeError):
    """The firmware ran but reported failure (non-zero exit, a fault, a non-zero done status)."""


# failures whose message is written for the user: the record keeps the message alone, without a traceback (a board
# that cannot run, or did not finish in time, raises BoardError)
_KNOWN_FAILURES = (BuildError, ProtocolError, BoardError, FirmwareFailed)


def host_description() -> str:
    return f"{socket.gethostname()} ({_platform.platform()}, Python {_platform.python_version()})"


def validate(config: Configuration, board: Board, work: str | Path, predicted: Predicted, *, study: str, trial: int,
             repeat: int = 0, seed: int = 0, data_path: str | Path | None = None, source_labels=None,
             target_labels=None, timeout_s: float | None = None, instruction_bound: InstructionBound | None = None,
             progress: Progress | None = None) -> ValidationRecord:
    """Validate `config` on `board`, building under `work`.

    The firmware runs draw `repeat` of seed `seed` (codegen). The run's time limit is `timeout_s`, else
    board.timeout_for(instruction_bound(test inputs)). `predicted` (copied, not changed) is compared with the
    measurements; an accuracy or epoch count it lacks is taken from codegen's simulation of the draw. `study` and
    `trial` label the record. Returns the record, status "ok" or "failed"."""
    if timeout_s is None and instruction_bound is None:
        raise TypeError("validate: give timeout_s or instruction_bound")
    work = Path(work)
    tell = progress or (lambda message: None)
    who = f"trial {trial} on {board.name}"
    record = ValidationRecord(study=study, trial=trial, board=board.name, status=STATUS_FAILED,
                              configuration=config.to_dict(),
                              provenance=Provenance(date_utc=_dt.datetime.now(_dt.timezone.utc)
                                                    .isoformat(timespec="seconds"),
                                                    host=host_description()))
    record.predicted = copy.deepcopy(predicted)
    # the sources of draw `repeat` of seed `seed` (models.draw), written when the board is known to be available
    sources = functools.partial(generate, config, work / "gen", repeat=repeat, seed=seed, data_path=data_path,
                                source_labels=source_labels, target_labels=target_labels)
    try:
        _run(record, config, sources, board, work, timeout_s, instruction_bound, tell, who)
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
        tell(f"{who}: failed: {record.reason}")
    record.errors = errors_of(record.measured, record.predicted, board.name)
    if record.ok:
        _check(record)
    return record


# --- comparing ------------------------------------------------------------------------------------------------------

def errors_of(measured: Measured, predicted: Predicted, board_name: str) -> dict[str, float]:
    """measured vs predicted: accuracy in percentage points, the rest relative."""
    out: dict[str, float] = {}
    if measured.accuracy is not None and predicted.accuracy is not None:
        out["accuracy_pp"] = 100.0 * (measured.accuracy - predicted.accuracy)
    if measured.accuracy is not None and predicted.replay_accuracy is not None:
        out["accuracy_replay_pp"] = 100.0 * (measured.accuracy - predicted.replay_accuracy)
    if board_name != "host":  # the host executable's sizes are not the board's
        # the prediction prices the deployed image; records from before it was built apart compare the only ELF
        ram = measured.deployed_peak_ram_bytes if measured.deployed_flash_bytes is not None else \
            measured.peak_ram_bytes
        flash = measured.deployed_flash_bytes if measured.deployed_flash_bytes is not None else measured.flash_bytes
        for key, m, p in (("ram_total", ram, predicted.ram_total), ("flash_total", flash, predicted.flash_total),
                          ("harness_ram", measured.harness_ram_bytes, predicted.harness_ram),
                          ("harness_flash", measured.harness_flash_bytes, predicted.harness_flash)):
            e = relative_error(m, p)
            if e is not None:
                out[key] = e
    if board_name == "host":  # nor is its clock the board's
        return out
    if isinstance(predicted.instructions, dict):
        for phase in PHASES:
            e = relative_error((measured.instructions or {}).get(phase), predicted.instructions.get(phase))
            if e is not None:
                out[f"instructions.{phase}"] = e
    for phase in PHASES:
        for key, m, p in ((f"cycles.{phase}", (measured.cycles or {}).get(phase), predicted.cycles.get(phase)),
                          (f"seconds.{phase}", (measured.seconds or {}).get(phase), predicted.seconds.get(phase)),
                          (f"energy_mj.{phase}", (measured.energy_mj or {}).get(phase),
                           predicted.energy_mj.get(phase))):
            e = relative_error(m, p)
            if e is not None:
                out[key] = e
    return out


def _check(record: ValidationRecord) -> None:
    m, p = record.measured, record.predicted
    if m.features_match is False:
        record.notes.append(f"features differ from the Python integer reference (FNV {m.features_fnv} vs "
                            f"{m.features_expected_fnv})")
    replayed = p.replay_accuracy is not None and p.replay_epochs_run is not None
    if replayed and m.accuracy is not None and (m.accuracy, m.epochs_run, m.best_epoch) != \
            (p.replay_accuracy, p.replay_epochs_run, p.replay_best_epoch):
        record.notes.append(f"the board and the replay of its arithmetic disagree (accuracy {m.accuracy:.4f} vs "
                            f"{p.replay_accuracy:.4f}, epochs {m.epochs_run} vs {p.replay_epochs_run}, best epoch "
                            f"{m.best_epoch} vs {p.replay_best_epoch}): a firmware or replay bug, please report it")
    if p.replay_steps is not None and m.steps != p.replay_steps:
        record.notes.append(f"the board took {m.steps} streaming steps, the replay {p.replay_steps}: a firmware or "
                            "replay bug, please report it")
    if m.accuracy is not None and p.accuracy is not None and \
            abs(100 * (m.accuracy - p.accuracy)) > ACCURACY_TOLERANCE_PP:
        why = (" (the replay of the firmware's arithmetic agrees with the board: the study's batched trainer adds "
               "in another order, and this draw amplifies last-bit differences)"
               if replayed and m.accuracy == p.replay_accuracy else "")
        record.notes.append(f"accuracy on the board differs from the study's simulation of the same draw by "
                            f"{100 * (m.accuracy - p.accuracy):+.1f} points (more than {ACCURACY_TOLERANCE_PP:g})"
                            + why)
    if m.epochs_run is not None and p.epochs_run is not None and m.epochs_run != p.epochs_run:
        record.notes.append(f"the board ran {m.epochs_run} epochs, the study's simulation of the draw {p.epochs_run}")


# --- failures -------------------------------------------------------------------------------------------------------

def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _is_unexpected(exc: BaseException) -> bool:
    return not isinstance(exc, _KNOWN_FAILURES)


def _reason(exc: BaseException) -> str:
    if not _is_unexpected(exc):
        return _one_line(exc)  # messages written for the user ("does not fit: RAM over by N bytes", ...)
    return f"{type(exc).__name__}: {_one_line(exc)}"


# --- generate, build, run, parse ------------------------------------------------------------------------------------

def _run(record: ValidationRecord, config: Configuration, sources: Callable[[], GeneratedSources], board: Board,
         work: Path, timeout_s: float | None, instruction_bound: InstructionBound | None, tell: Progress,
         who: str) -> None:
    ok, why = board.available()
    if not ok:
        raise BoardError(why)
    m, prov = record.measured, record.provenance

    t = time.monotonic()
    gen = sources()
    m.wall_s["generate"] = time.monotonic() - t
    prov.sources_sha256 = gen.sha256
    m.features_expected_fnv = f"0x{gen.expected_fnv1a:08x}"
    if record.predicted.accuracy is not None and not math.isclose(gen.simulated_accuracy, record.predicted.accuracy,
                                                                  abs_tol=1e-9):
        record.notes.append(f"codegen's simulation of the draw gives accuracy {gen.simulated_accuracy:.4f}, the "
                            f"study stored {record.predicted.accuracy:.4f}")
    if record.predicted.accuracy is None:
        record.predicted.accuracy = float(gen.simulated_accuracy)
    if gen.n_test:
        record.predicted.replay_accuracy = float(gen.replayed_accuracy)
    record.predicted.replay_epochs_run = int(gen.replayed_epochs_run)
    record.predicted.replay_best_epoch = int(gen.replayed_best_epoch)
    if config.streaming:
        record.predicted.replay_steps = int(gen.replayed_steps)
    if record.predicted.epochs_run is None:
        record.predicted.epochs_run = int(gen.simulated_epochs_run)
    tell(f"{who}: generated {gen.n_samples} samples + {gen.n_test} test inputs ({m.wall_s['generate']:.1f} s)")

    t = time.monotonic()
    where = {"platform": board.platform} if board.platform else {}
    try:
        # the deployed image first: what the study priced (if it does not fit, neither does the validation build)
        deployed = build(gen, board.target, work / "build", image="deployed", **where)
        m.deployed_flash_bytes = int(deployed.flash_bytes)
        m.deployed_static_ram_bytes = int(deployed.static_ram_bytes)
        binary = build(gen, board.target, work / "build", **where)
    finally:
        m.wall_s["build"] = time.monotonic() - t
    m.flash_bytes, m.static_ram_bytes = int(binary.flash_bytes), int(binary.static_ram_bytes)
    m.harness_flash_bytes = m.flash_bytes - m.deployed_flash_bytes
    m.harness_ram_bytes = m.static_ram_bytes - m.deployed_static_ram_bytes
    prov.elf_sha256, prov.toolchain = binary.elf_sha256, binary.toolchain_version
    tell(f"{who}: built {Path(deployed.path).name}: flash {m.deployed_flash_bytes / 1024:.1f} KB, static RAM "
         f"{m.deployed_static_ram_bytes / 1024:.1f} KB; {Path(binary.path).name} adds the harness: flash "
         f"{m.harness_flash_bytes:+d} B, static RAM {m.harness_ram_bytes:+d} B ({m.wall_s['build']:.1f} s)")

    if timeout_s is None:
        timeout_s = float(board.timeout_for(instruction_bound(gen.n_test)))
    t = time.monotonic()
    try:
        result = board.run(binary, timeout_s)
    finally:
        m.wall_s["run"] = time.monotonic() - t
    prov.board_versions = {str(k): str(v) for k, v in result.versions.items()}
    try:
        report = result.report()
    except FirmwareReportedError as exc:  # the harness could not feed its inputs: say which board
        raise FirmwareReportedError(f"{board.name}: {exc}") from None
    if result.exit_code not in (0, None) or report.status != 0:
        raise FirmwareFailed(f"{board.name}: firmware exited with status {result.exit_code} "
                             f"(done status {report.status})")
    _measured_from(record, report, result, gen, board)
    trained = f"{m.steps} streaming steps" if m.steps is not None else f"{m.epochs_run} epochs"
    tell(f"{who}: ran: accuracy {100 * m.accuracy:.1f}% (simulated {100 * record.predicted.accuracy:.1f}%, "
         f"replayed {100 * record.predicted.replay_accuracy:.1f}%), "
         f"{trained} ({m.wall_s['run']:.1f} s)")


def _measured_from(record: ValidationRecord, report: Report, result: RunResult, gen: GeneratedSources,
                   board: Board) -> None:
    m = record.measured
    m.correct, m.test = int(report.correct), int(report.test_count)
    m.accuracy = report.correct / report.test_count if report.test_count else None
    m.epochs_run, m.best_epoch = int(report.epochs_run), int(report.best_epoch)
    m.improvements = report.improvements
    m.steps = report.steps
    m.features_fnv = f"0x{report.features_fnv1a:08x}"
    m.features_match = report.features_fnv1a == gen.expected_fnv1a
    m.stack_bytes, m.heap_bytes = report.stack_bytes, report.heap_bytes
    if m.stack_bytes is not None and m.heap_bytes is not None and m.static_ram_bytes is not None:
        m.peak_ram_bytes = m.static_ram_bytes + m.stack_bytes + m.heap_bytes
        if m.deployed_static_ram_bytes is not None:
            m.deployed_peak_ram_bytes = m.deployed_static_ram_bytes + m.stack_bytes + m.heap_bytes
    instructions = {k: int(v) for k, v in (result.instructions or {}).items() if v is not None}
    m.instructions = instructions or None
    if report.cycles:
        m.cycles = {k: int(v) for k, v in report.cycles.items()}
        m.cycles_source = "DWT->CYCCNT"
        if board.clock_hz:
            m.seconds = {k: v / board.clock_hz for k, v in m.cycles.items()}
    elif report.host_ns:
        m.seconds = {k: v / 1e9 for k, v in report.host_ns.items()}
        m.cycles_source = "host clock (ns); no cycle counter"
    if result.cycles_estimate:  # qemu-an386: an estimate, kept apart from measured cycles
        m.cycles_estimate = {k: int(v) for k, v in result.cycles_estimate.items()}
        m.seconds_estimate = dict(result.seconds_estimate or {}) or None
        m.seconds_estimate_source = result.seconds_estimate_source
    m.cycles_estimate_source = result.cycles_estimate_source
    if result.energy_mj:
        m.energy_mj = {k: float(v) for k, v in result.energy_mj.items()}
        m.energy_source = result.energy_source
    if board.name == "host":
        record.notes.append("host board: flash and static RAM are the host executable's (not comparable with the "
                            "board's); stack and heap are not measurable there")
