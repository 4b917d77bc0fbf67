"""`dse validate`, the study half: which trial, what the study predicted for it, where the record goes.

firmware.validate generates, builds, runs and parses; this module feeds it a trial's configuration, sample draw,
predictions and time bound, then stores the record, because only the study side knows the study (firmware must not
import dse). The firmware runs repeat 0 of the study seed: the same sample draw and head seed as the trial's
per_repeat[0] simulated accuracy, so the board's accuracy is compared with the simulation of exactly that draw.

The record is written atomically to DIR/validations/trial-<N>-<board>.json and into the study's storage as the
study user attribute `validation/<board>/trial-<N>` (for calibration). A failed validation is recorded too; user
mistakes (an unknown trial or board) raise UserError and record nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cost_models.board import BoardSpecError, load_board
from cost_models.paper.calibration import CalibrationError
from cost_models.paper.latency import training_counts
from cost_models.predict import predict
from cost_models.pricing import Prediction
from cost_models.workload import workload_from_config
from dse.console import say
from dse.errors import UserError
from dse.reports.tables import sig, text_table
from dse.reports.trials import picks, trial_table
from dse.study.folder import StudyFolder
from dse.study.price import price
from dse.study.trial_attrs import ATTR_ACCURACY, ATTR_CONFIG, ATTR_PREDICTED
from firmware.boards import get_board as _get
from firmware.records import write_record
from firmware.validate import validate
from vocabulary.configuration import Configuration
from vocabulary.phases import PHASES
from vocabulary.validation_record import NOT_PREDICTED, Predicted, ValidationRecord

VALIDATIONS_DIR = "validations"
WORK_DIR = "work"
REPEAT = 0  # the simulated repeat the firmware reproduces (its accuracy is per_repeat[0])

# The instruction bound behind the run timeout: the instructions the qemu-an386 calibration predicts for the whole
# epoch budget (early stopping only shortens a run) x PREDICTED_SAFETY, plus a fixed allowance for start-up (stack
# painting) and output. The calibration's worst error on unseen configurations is 19% (training phase), so 4x is
# ample; qemu's timeout_for adds its own margin for emulation speed. Without that calibration the bound falls back
# on operation counts (frozen-layer MACs, outputs and compares per sample, head MACs and updates per epoch, test
# forward passes) x INSTRUCTIONS_PER_OP x SAFETY: the firmware retires 8.1-8.6 instructions per counted operation
# on qemu-an386, so 16 x 2 is also about four times the need.
PREDICTED_SAFETY = 4
INSTRUCTIONS_PER_OP = 16
SAFETY = 2
FIXED_INSTRUCTIONS = 20_000_000

Progress = Callable[[str], None]


# --- the trial ------------------------------------------------------------------------------------------------------

@dataclass
class TrialInfo:
    study: Any  # optuna.Study (read-write: records go into its user attributes)
    spec: Any  # dse.study.file.StudySpec
    number: int
    config: Configuration
    accuracy: dict  # the trial's accuracy attribute (mean, std, per_repeat, epochs_per_repeat, ...)
    predicted: dict  # the trial's flat prediction attribute


def load_trial(folder: str | Path, number: int, loaded=None) -> TrialInfo:
    """The study, its spec and trial `number`'s configuration from the study's storage."""
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
    study, spec = loaded if loaded is not None else StudyFolder(folder).load()
    chosen = picks(trial_table(study, spec), spec, unique=True)
    if not len(chosen):
        raise UserError(f"{folder}: study {spec.name!r} has no feasible Pareto pick to validate")
    return [int(n) for n in chosen["number"][:count]]


def get_board(name: str, **options):
    """The board called `name` (UserError for an unknown name); options (e.g. the nrf52840dk's ppk2 port) go to
    its constructor, None values left out."""
    try:
        return _get(name, **{k: v for k, v in options.items() if v is not None})
    except ValueError as exc:
        raise UserError(str(exc)) from None


# --- what the study expects -----------------------------------------------------------------------------------------

def operation_count(config, classes: int | None, test_count: int) -> float:
    """Operations of one firmware run: N forward passes to the cut, epochs x head training (full budget: early
    stopping only shortens it), T test forward passes (frozen layers + head)."""
    w = workload_from_config(config, classes)
    frozen = w.input_elements + sum(layer.macs + layer.elements + layer.compares for layer in w.layers[1:])
    training = sum(training_counts(w, float(config.epochs)).values())
    return frozen * config.samples + training + (frozen + w.head_macs) * test_count


@dataclass
class PickPrice:
    """What the study predicts for one pick's validation, priced once and handed through to the record's `Predicted`
    and to the run's time limit.

    `prediction` prices the study's board (its firmware) for the epochs the draw ran and the test inputs the firmware
    evaluates. The validating board's instruction model gives `instructions`: the same prediction where that board
    is the study's, priced apart only when another board runs the firmware (a different board is another price)."""

    config: Configuration
    epochs: int | None  # epochs of the draw (None: the full budget)
    prediction: Prediction | None  # None: re-pricing failed (`failure` says why), the stored prediction is used
    failure: str | None = None
    instructions: dict[str, float | None] | None = None  # the validating board's model; None: it has none
    instructions_board: str | None = None
    instructions_note: str | None = None  # why instructions are not predicted

    @property
    def epochs_priced(self) -> int:
        return self.epochs if self.epochs else self.config.epochs

    def budget_instructions(self) -> dict[str, float] | None:
        """Instructions per phase for the full epoch budget (early stopping only shortens a run): the priced
        training phase scaled from the draw's epochs to the budget (an over-estimate: its fixed part scales too);
        None where no instruction model priced every phase."""
        predicted = self.instructions
        if not predicted and self.prediction is not None:
            predicted = self.prediction.instructions
        if not predicted or any(predicted.get(phase) is None for phase in PHASES):
            return None
        scale = self.config.epochs / self.epochs_priced
        return {phase: float(v) * (scale if phase == "training" else 1.0) for phase, v in predicted.items()}


def price_pick(info: TrialInfo, board_name: str | None) -> PickPrice:
    """Price trial `info`'s configuration for its validation on `board_name` (see PickPrice)."""
    epochs = _epochs_of_draw(info)
    test_inputs = int(info.accuracy.get("test_size") or 0)
    classes = info.spec.task.classes
    firmware = getattr(info.spec, "firmware", None)
    out = PickPrice(info.config, epochs, None)
    try:
        # the test inputs the firmware evaluates: priced into flash and the evaluation phase (our firmware's model)
        out.prediction = price(info.config, info.spec.board, epochs if epochs else None, classes, firmware,
                               test_inputs)
    except Exception as exc:  # noqa: BLE001 - fall back on what the study stored
        out.failure = f"re-pricing failed ({type(exc).__name__}: {exc}); stored prediction used"
    try:
        board = load_board(board_name) if board_name else None
    except BoardSpecError:
        board = None
    if board is None or not board.instructions_only:
        out.instructions_note = f"instructions: not predicted (no instruction model for {board_name or 'this board'})"
        return out
    if out.prediction is not None and out.prediction.board == board.name and epochs != 0:
        instructions = out.prediction.instructions  # the validating board is the study's: the same price
    else:
        try:
            instructions = predict(info.config, board, epochs, classes=classes, test_inputs=test_inputs).instructions
        except (CalibrationError, ValueError) as exc:
            out.instructions_note = f"instructions: not predicted ({' '.join(str(exc).split())})"
            return out
    out.instructions, out.instructions_board = instructions, board.name
    return out


def instruction_upper_bound(config, classes: int | None, test_count: int, priced: PickPrice | None = None) -> int:
    """A generous bound on the instructions one run retires: from the instructions predicted for the full epoch
    budget (`priced`'s, else priced here on the qemu-an386 calibration), else from operation counts (see
    PREDICTED_SAFETY, INSTRUCTIONS_PER_OP)."""
    if priced is not None:
        predicted = priced.budget_instructions() or {}
    else:
        try:
            predicted = predict(config, "qemu-an386", classes=classes, test_inputs=test_count).instructions
        except (CalibrationError, ValueError):
            predicted = {}
    if predicted and all(v is not None for v in predicted.values()):
        return int(PREDICTED_SAFETY * sum(predicted.values()) + SAFETY * FIXED_INSTRUCTIONS)
    ops = operation_count(config, classes, test_count)
    return int(SAFETY * (INSTRUCTIONS_PER_OP * ops + FIXED_INSTRUCTIONS))


def predicted_values(info: TrialInfo, priced: PickPrice, board_name: str | None = None) -> Predicted:
    """The study's predictions for the trial: simulated accuracy of repeat 0 (the draw the firmware runs), and from
    the pick's price RAM and flash, per-phase time and energy for the epochs that draw ran (the stored prediction is
    for the mean over repeats), and instructions per phase when the validating board has an instruction model."""
    per_repeat = info.accuracy.get("per_repeat") or []
    predicted = Predicted(board=info.spec.board, accuracy=float(per_repeat[REPEAT]) if per_repeat else None,
                          accuracy_mean=info.accuracy.get("mean"), epochs_run=priced.epochs,
                          instructions=NOT_PREDICTED)
    prediction = priced.prediction
    if priced.failure:
        predicted.notes.append(priced.failure)
    if prediction is not None:
        predicted.ram_total, predicted.flash_total = int(prediction.ram_total), int(prediction.flash_total)
        predicted.harness_ram = prediction.harness_ram
        predicted.harness_flash = prediction.harness_flash
        for phase, cost in prediction.phases.items():
            predicted.cycles[phase] = cost.cycles
            predicted.seconds[phase] = cost.seconds
            predicted.energy_mj[phase] = cost.energy_mj
        predicted.notes += list(prediction.notes)
        if "platform" in prediction.ram and board_name and board_name != prediction.board:
            predicted.notes.append(f"RAM and flash are predicted for the {prediction.board} build, whose platform "
                                   f"layer ({prediction.ram['platform']:+d} B RAM, {prediction.flash['platform']:+d} "
                                   f"B flash) the {board_name} build does not have")
        if priced.epochs:
            predicted.notes.append(f"time and energy priced for the {priced.epochs} epochs this draw ran in "
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
    if priced.instructions is None:
        predicted.notes.append(priced.instructions_note)
    else:
        predicted.instructions = {p: float(v) for p, v in priced.instructions.items() if v is not None}
        predicted.instructions_board = priced.instructions_board
    return predicted


def _epochs_of_draw(info: TrialInfo) -> int | None:
    epochs = info.accuracy.get("epochs_per_repeat") or []
    return int(epochs[REPEAT]) if epochs else None


# --- the validation -------------------------------------------------------------------------------------------------

def validate_trial(folder: str | Path, number: int, board, *, timeout_s: float | None = None,
                   progress: Progress | None = say, loaded=None, info: TrialInfo | None = None,
                   store: bool = True) -> ValidationRecord:
    """Validate trial `number` of the study in `folder` on `board` (a board object or name). Returns the record
    (status "ok" or "failed"); raises UserError for an unknown trial or board."""
    folder = Path(folder)
    if isinstance(board, str):
        board = get_board(board)
    info = info or load_trial(folder, number, loaded)
    task = info.spec.task
    priced = price_pick(info, board.name)
    record = validate(
        info.config, board, folder / VALIDATIONS_DIR / WORK_DIR / f"trial-{number}-{board.name}",
        predicted_values(info, priced, board.name), study=info.spec.name, trial=number, repeat=REPEAT,
        seed=info.spec.seed, data_path=task.data, source_labels=task.source_labels,
        target_labels=task.target_labels, timeout_s=timeout_s,
        instruction_bound=lambda test_count: instruction_upper_bound(info.config, task.classes, test_count, priced),
        progress=None if progress is None else (lambda message: progress(f"dse: {message}")))
    if store:
        save(record, folder, info.study)
    return record


def save(record: ValidationRecord, folder: str | Path, study) -> Path:
    """The record into DIR/validations/ (atomic) and into the study storage as a study user attribute."""
    path = write_record(record, Path(folder) / VALIDATIONS_DIR)
    study.set_user_attr(record.key, record.to_dict())
    return path


def stored_validations(study) -> dict[str, dict]:
    """Every validation record stored with a study: attribute key -> record dict."""
    return {k: v for k, v in study.user_attrs.items() if k.startswith("validation/")}


# --- the terminal table ---------------------------------------------------------------------------------------------

def _memory_rows(m, p, e, host: bool) -> list[list[str]]:
    """Deployed image (what the study priced) measured vs predicted; the harness's share as separate rows."""
    exe = " (host executable)" if host else ""
    rows = []
    deployed = m.deployed_flash_bytes is not None
    ram = m.deployed_peak_ram_bytes if deployed else m.peak_ram_bytes
    static = m.deployed_static_ram_bytes if deployed else m.static_ram_bytes
    what = "deployed image" if deployed else "validation ELF (record predates the deployed build)"
    if ram is not None or static is not None or p.ram_total is not None:
        detail = ""
        if static is not None:
            detail = f"; static {_kb(static)} + stack {_kb(m.stack_bytes) or '?'} + heap {_kb(m.heap_bytes) or '?'} KB"
        rows.append(["peak RAM (KB)", _kb(ram), _kb(p.ram_total), _pct(e.get("ram_total")), what + detail + exe])
    flash = m.deployed_flash_bytes if deployed else m.flash_bytes
    if flash is not None or p.flash_total is not None:
        rows.append(["flash (KB)", _kb(flash), _kb(p.flash_total), _pct(e.get("flash_total")),
                     f"{what}, from its ELF{exe}"])
    if m.harness_ram_bytes is not None:
        rows.append(["harness RAM (KB)", _kb(m.harness_ram_bytes),
                     "not predicted" if p.harness_ram is None else _kb(p.harness_ram), _pct(e.get("harness_ram")),
                     "validation harness's share: validation ELF - deployed ELF, static" + exe])
    if m.harness_flash_bytes is not None:
        rows.append(["harness flash (KB)", _kb(m.harness_flash_bytes),
                     "not predicted" if p.harness_flash is None else _kb(p.harness_flash),
                     _pct(e.get("harness_flash")), "validation harness's share: validation ELF - deployed ELF" + exe])
    return rows


def _kb(n) -> str:
    return "" if n is None else f"{n / 1024:.1f}"


def _pct(e) -> str:
    return "" if e is None else f"{100 * e:+.1f}%"


def _grouped(n) -> str:
    return "" if n is None else f"{int(n):,}"


def _sig(x, fmt: str | None = None) -> str:
    """Three significant digits (tables.sig) unless a format is given."""
    return "" if x is None else sig(x) if fmt is None else format(x, fmt)


def validation_table(records: list[ValidationRecord], width: int | None = None) -> str:
    """Measured against predicted, one block per record."""
    blocks = []
    for r in records:
        c = r.configuration
        training = (f"streaming, replay {c.get('replay', 0)}" if c.get("mode") == "streaming"
                    else f"{c.get('epochs')} epochs, batch {c.get('batch')}")
        title = (f"trial {r.trial} of {r.study} on {r.board}: {r.status}"
                 f"{': ' + r.reason if r.reason else ''} (cut {c.get('cut')}, hidden {c.get('hidden')}, "
                 f"{c.get('samples')} samples, {training}, lr {_sig(c.get('lr'), '.3g')})")
        m, p, e = r.measured, r.predicted, r.errors
        rows = []
        if m.accuracy is not None or p.accuracy is not None:
            rows.append(["accuracy (%)", _sig(None if m.accuracy is None else 100 * m.accuracy, ".1f"),
                         _sig(None if p.accuracy is None else 100 * p.accuracy, ".1f"),
                         "" if "accuracy_pp" not in e else f"{e['accuracy_pp']:+.1f} pp",
                         "simulated by the study, same draw"])
        if m.accuracy is not None and p.replay_accuracy is not None:
            rows.append(["accuracy (%)", _sig(100 * m.accuracy, ".1f"), _sig(100 * p.replay_accuracy, ".1f"),
                         "" if "accuracy_replay_pp" not in e else f"{e['accuracy_replay_pp']:+.1f} pp",
                         "replayed in the firmware's arithmetic, same draw"])
        if m.epochs_run is not None:
            rows.append(["epochs run", str(m.epochs_run), _sig(p.epochs_run, "d"), "",
                         "simulated by the study, same draw"])
            if p.replay_epochs_run is not None:
                rows.append(["epochs run", str(m.epochs_run), str(p.replay_epochs_run), "",
                             "replayed in the firmware's arithmetic"])
        if m.features_fnv is not None:
            rows.append(["features FNV-1a", m.features_fnv, m.features_expected_fnv or "",
                         "match" if m.features_match else "DIFFER", "integer reference"])
        host = r.board == "host"
        rows += _memory_rows(m, p, e, host)
        for phase in PHASES:
            if m.instructions and phase in m.instructions:
                pi = p.instructions.get(phase) if isinstance(p.instructions, dict) else None
                rows.append([f"instructions {phase}", _grouped(m.instructions[phase]),
                             NOT_PREDICTED if pi is None else _grouped(round(pi)),
                             _pct(e.get(f"instructions.{phase}")),
                             "qemu plugin, exact" + (f"; predicted by the {p.instructions_board} calibration"
                                                     if pi is not None else "")])
        for phase in PHASES:
            mc, pc = (m.cycles or {}).get(phase), p.cycles.get(phase)
            if mc is not None:
                rows.append([f"cycles {phase}", _grouped(mc), "uncalibrated" if pc is None else _grouped(pc),
                             _pct(e.get(f"cycles.{phase}")), m.cycles_source or ""])
        for phase in PHASES:  # an estimate (qemu-an386), in the measured column but never called measured
            ce, mi = (m.cycles_estimate or {}).get(phase), (m.instructions or {}).get(phase)
            if ce is not None:
                rows.append([f"cycles {phase} (estimate, static CM4 timing)", _grouped(ce), "", "",
                             "estimate, not measured" + (f"; {ce / mi:.2f} cycles/instruction" if mi else "")])
        for phase in PHASES:
            se, ce = (m.seconds_estimate or {}).get(phase), (m.cycles_estimate or {}).get(phase)
            if se is not None:
                rows.append([f"time {phase} (estimate, s)", _sig(se), "", "",
                             "estimate" + (f": estimated cycles at {ce / se / 1e6:g} MHz" if ce and se else "")])
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
            lines.append(text_table(["measure", "measured", "predicted", "error", "note"], rows, indent="  ",
                                    width=width))
        if m.wall_s:
            lines.append("  wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in m.wall_s.items()))
        if m.cycles_estimate_source:
            lines.append(f"  cycle estimate: {m.cycles_estimate_source}")
        lines += [f"  note: {n}" for n in r.notes]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
