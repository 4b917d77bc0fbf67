"""From the emulated board's counts to the real board's time and energy: cycles per instruction and power per phase.

QEMU counts the instructions our firmware retires exactly but has no clock; the nRF52840's only timed records are
the paper's Table III (training phase, 2 tasks x 6 sample counts, time and energy). The map joins the two:

    cycles(phase) = instructions(phase) x CPI(phase)        instructions: the qemu-an386 firmware calibration's
    seconds = cycles / clock,  energy = seconds x P(phase)   prediction for the same configuration

Fit (pure functions `fit_cpi`, `fit_power`): CPI of the training phase by least squares in relative residuals over
the Table III time records (record cycles = time x 64 MHz), the training power as total energy / total time of the
same records, cross-checked against the board file's published training current x supply. Records the outlier
screen of the Table III calibration flags (`calibration.load_calibration`) are left out and reported.

What the data does not cover is labelled, not invented: Table III has no collection or evaluation record, so their
cycles are our firmware's *static Cortex-M4 estimate* (status "estimated"): per configuration, the emulator's
cycles-estimate model (microtl_dse.fit, fitted on the per-block execution counts x Cortex-M4 TRM timing that the
qemu-an386 runs record, firmware/cycle_estimate.py) predicts the cycles of that phase of our code, at zero wait
states, branch refill P = 2, divide 7 cycles. That prices the code that actually runs (a Table III CPI is the
paper's CMSIS-NN firmware's, on its training phase); what it leaves out is the nRF52840's flash wait states and
cache, which no record of these phases measures. Only when the emulator's records carry no estimate (files written
before the campaign recorded it) is their CPI *assumed* equal to the training fit, as in map format 1. Their power is
the board file's published inference current x supply (evaluation: assumed the same, it runs the same int8
network). The paper's firmware (CMSIS-NN q7 kernels, arm-gcc 9.2.1) is not ours, so the fitted training CPI also
absorbs the difference in code between the two, not only the core's pipeline and flash wait states; the map's notes
compare the static estimate with Table III's times on the same configurations. Timed DK records of our own firmware
(`firmware_runs/`) win over both, for any phase.

The fit is written to cost_models/calibration/<board>/emulator_map.json (`write_map`, `dse calibrate --board
nrf52840dk --refit`) with the digests of its inputs; `load_emulator_map` reads it and says when an input changed
since (stale: refit). Not a CSV, so the Table III record loader does not read it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path

from cost_models.atomic import replacing
from cost_models.board import BoardSpec, load_board
from cost_models.microtl_dse.fit import load_firmware_calibration, price_firmware
from cost_models.microtl_dse.runs import load_runs
from cost_models.paper.calibration import load_calibration
from cost_models.paper.records import load_records
from cost_models.user_data import layered_file, layered_files
from cost_models.workload import workload_from_config
from vocabulary.phases import PHASES

FORMAT = "microtl-dse emulator map"
VERSION = 2  # 2: phases without timed records priced by the static cycle estimate ("estimated")
READ_VERSIONS = (1, 2)  # a format 1 file still loads (and is reported stale: refit)
MAP_FILE = "emulator_map.json"
TABLE3_FILE = "paper_table3.csv"
TABLE3_SOURCE = "Table III"
RUNS_DIR = "firmware_runs"  # our firmware timed on the board (imported validation records); a folder of its own, so
# the Table III loader (every *.csv of the calibration folder) does not read it
EMULATOR = "qemu-an386"
FITTED_PHASE = "training"  # the only phase Table III timed
CPI_STATUS = ("fitted", "estimated", "assumed", "uncalibrated")  # estimated: cycles = the static estimate, no CPI
POWER_STATUS = ("fitted", "board", "assumed")


class EmulatorMapError(ValueError):
    """A missing or malformed emulator map file (the message names the file and key)."""


@dataclass(frozen=True)
class PlatformDelta:
    """What the real board's build adds to the emulator's: the same generated and core C code and linker script
    (the nRF52840 memory map), but platform_nrf52840.c (RTT up-buffer and control block, DWT) in place of
    platform_qemu.c (semihosting). Measured by building the same sources for both platforms (`dse calibrate
    --board nrf52840dk --refit` does it); static sizes only: the stack high-water of the RTT path is not measured."""

    ram_bytes: int  # static RAM, nRF52840 build - emulator build
    flash_bytes: int
    configurations: tuple[str, ...]  # what was built
    toolchain: str
    measured: str  # date


@dataclass(frozen=True)
class PhaseMap:
    """How one phase's instructions become time and energy on the real board, and where each number comes from."""

    cpi: float | None  # core cycles per retired instruction; None: estimated (per configuration) or not priced
    cpi_status: str  # fitted | estimated | assumed | uncalibrated
    cpi_source: str  # estimated: how the static estimate is made and predicted
    power_w: float | None
    power_status: str  # fitted (Table III energy / time) | board (board file current x supply) | assumed
    power_source: str

    @cached_property
    def source(self) -> str:
        """One line for predictions: which figure came from which source."""
        if self.estimated:
            cpi = f"cycles = the static Cortex-M4 estimate of our firmware (estimated: {self.cpi_source})"
        else:
            cpi = "uncalibrated" if self.cpi is None else f"CPI {self.cpi:.4g} ({self.cpi_status}: {self.cpi_source})"
        return f"{cpi}; power {self.power_w * 1e3:.4g} mW ({self.power_status}: {self.power_source})"

    @property
    def estimated(self) -> bool:
        return self.cpi_status == "estimated"


@dataclass(frozen=True)
class MapResidual:
    """One Table III run under the fit: its measured time and energy next to the map's."""

    run: str
    task: str
    samples: int
    instructions: float  # predicted by the emulator's firmware calibration
    measured_s: float
    predicted_s: float
    rel_error: float  # predicted / measured - 1 (time)
    record_cpi: float  # this record alone: measured cycles / instructions
    energy_mj: float | None  # published
    power_w: float | None  # this record: energy / time
    flagged: bool  # left out of the fit (outlier screen of the Table III calibration)
    flag_reason: str = ""
    phase: str = FITTED_PHASE
    source: str = TABLE3_SOURCE  # or the validation record ("validation:<study>/trial-N") of our firmware


@dataclass(frozen=True)
class EmulatorMap:
    board: str
    emulator: str
    clock_hz: int
    phases: dict[str, PhaseMap]
    residuals: tuple[MapResidual, ...]
    power_check: dict[str, float]  # fitted vs board file (W) and their relative difference
    instructions_source: str
    inputs: dict[str, str]  # input -> sha256 (Table III records, firmware calibration, board file)
    created: str
    platform: PlatformDelta | None = None  # None: RAM and flash are the emulator build's
    notes: tuple[str, ...] = ()
    format: str = FORMAT
    version: int = VERSION
    stale: tuple[str, ...] = field(default=(), compare=False)  # set on load: inputs changed since the fit

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["stale"]
        return data


# --- the fit (pure) ----------------------------------------------------------------------------------------------

def fit_cpi(instructions: list[float], seconds: list[float], clock_hz: float) -> float:
    """The one CPI minimising sum((CPI x I / (t x f) - 1)^2): relative residuals, so 7 s and 48 s rows weigh the
    same. Closed form: with r = I / (t x f), CPI = sum(r) / sum(r^2)."""
    if not instructions or len(instructions) != len(seconds):
        raise ValueError("fit_cpi needs one time per instruction count, at least one")
    if any(i <= 0 for i in instructions) or any(t <= 0 for t in seconds):
        raise ValueError("fit_cpi needs positive instruction counts and times")
    r = [i / (t * clock_hz) for i, t in zip(instructions, seconds)]
    return sum(r) / sum(x * x for x in r)


def fit_power(energy_mj: list[float], seconds: list[float]) -> float:
    """Average power in W: total energy over total time (the phase's mean power weighted by time)."""
    if not energy_mj or len(energy_mj) != len(seconds) or sum(seconds) <= 0:
        raise ValueError("fit_power needs one time per energy, at least one, with positive total time")
    return sum(energy_mj) * 1e-3 / sum(seconds)


@dataclass(frozen=True)
class TimedRun:
    """One timed run of the real board with the emulator's instruction count for its configuration."""

    run: str
    task: str
    samples: int
    instructions: float
    seconds: float
    energy_mj: float | None
    flag: str = ""  # why the time record is distrusted ("" = usable)
    phase: str = FITTED_PHASE
    source: str = TABLE3_SOURCE  # Table III (the paper's firmware) or a validation record of ours


def fit_set(runs: list[TimedRun], phase: str) -> list[TimedRun]:
    """The runs a phase's CPI and power are fitted on: our firmware's own timed runs of that phase when there are
    any (they time the code we price), else, for training, Table III's (the paper's firmware); flagged runs never."""
    own = [r for r in runs if r.phase == phase and r.source != TABLE3_SOURCE and not r.flag]
    if own or phase != FITTED_PHASE:
        return own
    return [r for r in runs if r.phase == phase and r.source == TABLE3_SOURCE and not r.flag]


def _what(runs: list[TimedRun]) -> str:
    if runs[0].source == TABLE3_SOURCE:
        return f"Table III {{}}, {len(runs)} records"
    return f"{{}} of {len(runs)} validation runs of our firmware on the board"


def fit_map(runs: list[TimedRun], board: BoardSpec, *, instructions_source: str, inputs: dict[str, str],
            created: str | None = None, emulator: str = EMULATOR,
            platform: PlatformDelta | None = None, estimates: dict[str, str] | None = None,
            extra_notes: tuple[str, ...] = ()) -> EmulatorMap:
    """The map from timed runs (the pure part of `build_map`): per phase, the CPI and power of `fit_set`; a phase
    with no timed run is priced by the emulator's static cycle estimate where `estimates` (phase -> how the
    estimate is made) has it, labelled estimated, else takes the training CPI, labelled assumed; its power is the
    board file's."""
    usable = fit_set(runs, FITTED_PHASE)
    if not usable:
        raise ValueError(f"no usable timed {FITTED_PHASE} record for {board.name}: nothing to fit a CPI on")
    notes = []
    board_train = board.phase_power_w("training")
    board_infer = board.phase_power_w("collection")
    board_why = f"board file {board.path.name}: [power] training_current_ma x supply_v ({board.sources_of('power')})"
    infer_why = (f"board file {board.path.name}: [power] inference_current_ma x supply_v "
                 f"({board.sources_of('power')})")
    table3_energy = [r for r in runs if r.source == TABLE3_SOURCE and r.phase == FITTED_PHASE and not r.flag
                     and r.energy_mj is not None]

    def fitted(phase_runs: list[TimedRun], power_default: tuple[float, str, str]) -> PhaseMap:
        what = _what(phase_runs)
        cpi = fit_cpi([r.instructions for r in phase_runs], [r.seconds for r in phase_runs], board.clock_hz)
        with_energy = [r for r in phase_runs if r.energy_mj is not None]
        if with_energy:
            power = fit_power([r.energy_mj for r in with_energy], [r.seconds for r in with_energy])
            pw = (power, "fitted", _what(with_energy).format("energy / time"))
        else:
            pw = power_default
        return PhaseMap(cpi, "fitted", what.format("time" if phase_runs[0].source == TABLE3_SOURCE
                                                   else "DWT cycles"), *pw)

    if table3_energy:
        train_default = (fit_power([r.energy_mj for r in table3_energy], [r.seconds for r in table3_energy]),
                         "fitted", f"Table III energy / time, {len(table3_energy)} records")
    else:
        train_default = (board_train, "board", board_why)
        notes.append("training power: no energy records; the board file's training current x supply is used")
    train = fitted(usable, train_default)
    phases = {FITTED_PHASE: train}
    for phase in PHASES:
        if phase == FITTED_PHASE:
            continue
        default = (board_infer, "board", infer_why) if phase == "collection" else \
            (board_infer, "assumed", "the collection power (the board file's inference current x supply): evaluation "
                                     "runs the same int8 network plus the head; no record of its own")
        own = fit_set(runs, phase)
        if own:
            phases[phase] = fitted(own, default)
        elif phase in (estimates or {}):
            phases[phase] = PhaseMap(None, "estimated", f"{estimates[phase]}; no timed {board.name} record of this "
                                                        "phase", *default)
        else:
            phases[phase] = PhaseMap(train.cpi, "assumed", f"assumed equal to the training CPI: no timed {board.name} "
                                                           f"record of this phase, no {emulator} cycle estimate",
                                     *default)
            notes.append(f"{phase}: the {emulator} firmware calibration has no static cycle estimate of this phase "
                         f"(its records carry none: rerun the {emulator} campaign), so its CPI is assumed equal to "
                         "the training CPI")
    phases = {phase: phases[phase] for phase in PHASES}
    residuals = []
    for r in runs:
        cpi = phases[r.phase].cpi or train.cpi  # runs are only of fitted phases; the guard keeps this total
        predicted = r.instructions * cpi / board.clock_hz
        residuals.append(MapResidual(
            r.run, r.task, r.samples, r.instructions, r.seconds, predicted, predicted / r.seconds - 1,
            r.seconds * board.clock_hz / r.instructions, r.energy_mj,
            None if r.energy_mj is None else r.energy_mj * 1e-3 / r.seconds, bool(r.flag), r.flag, r.phase,
            r.source))
    if usable[0].source == TABLE3_SOURCE:
        notes.append("the CPI absorbs the difference between the paper's firmware (CMSIS-NN q7 kernels, arm-gcc "
                     "9.2.1), which Table III timed, and ours, whose instructions the emulator counts: it is a "
                     "cycles-per-instruction of our code only as far as both spend their time alike")
    by_task: dict[str, list[float]] = {}
    for res in residuals:
        if not res.flagged and res.source == TABLE3_SOURCE:
            by_task.setdefault(res.task, []).append(res.record_cpi)
    if len(by_task) > 1:
        notes.append("per task CPI: " + ", ".join(f"{t} {sum(v) / len(v):.3f}" for t, v in sorted(by_task.items()))
                     + (f" (one CPI {train.cpi:.3f} for all: the residuals show the spread)"
                        if usable[0].source == TABLE3_SOURCE else
                        f" (the paper's firmware; ours, timed on the board: {train.cpi:.3f})"))
    power_check = {"fitted_w": train.power_w, "board_w": board_train,
                   "rel_difference": train.power_w / board_train - 1}
    return EmulatorMap(board.name, emulator, board.clock_hz, phases, tuple(residuals), power_check,
                       instructions_source, dict(inputs), created or date.today().isoformat(), platform,
                       (*notes, *extra_notes))


# --- inputs: Table III and the emulator's firmware calibration -----------------------------------------------------

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def current_inputs(board: BoardSpec, emulator: str = EMULATOR, fw_cal=None) -> dict[str, str]:
    """The digests of what the map is fitted from, to tell a stale map file (`fw_cal`: another firmware
    calibration than the emulator's current one, e.g. a snapshot)."""

    fw = fw_cal or load_firmware_calibration(emulator)
    return {TABLE3_FILE: _sha256(board.calibration_dir / TABLE3_FILE),
            f"{emulator} firmware calibration ({', '.join(fw.files)})": fw.digest,
            board.path.name: _sha256(board.path),
            **{f"{RUNS_DIR}/{p.name}": _sha256(p) for p in own_run_files(board)}}


def own_run_files(board: BoardSpec) -> list[Path]:
    """The shipped and the user's (cost_models.user_data) records of our firmware timed on the board."""
    return layered_files(tuple(d / RUNS_DIR for d in board.calibration_dirs))


def own_timed_runs(board: BoardSpec, fw_cal) -> list[TimedRun]:
    """Our firmware timed on the board (cycles, and energy where a PPK2 measured it, per phase of each imported
    validation record), with the instructions the emulator's firmware calibration predicts for the configuration,
    epochs run and best epoch the board reported."""

    groups: dict[tuple[str, str], tuple[object, dict, dict]] = {}
    for r in (r for f in own_run_files(board) for r in load_runs(f)):
        if r.board != board.name:
            raise EmulatorMapError(f"{r.where}: a run of board {r.board!r} among the records of {board.name!r}")
        if r.metric not in ("cycles", "energy_nj"):
            continue
        _, cycles, energy = groups.setdefault((r.key, r.source), (r, {}, {}))
        (cycles if r.metric == "cycles" else energy)[r.phase] = r.value
    out = []
    for (key, source), (r, cycles, energy) in groups.items():
        fw = price_firmware(fw_cal, workload_from_config(r.config, r.classes), float(r.epochs_run), r.test,
                            float(r.copies))
        c = r.config
        shape = f"{c.model}/{c.cut}/h{c.hidden}/b{c.batch}/c{r.classes}"
        for phase, n in cycles.items():
            instructions = fw.instructions.get(phase)
            if not instructions:
                raise EmulatorMapError(f"{r.where}: the {fw_cal.board} firmware calibration cannot predict the "
                                       f"{phase} instructions of {key}")
            nj = energy.get(phase)
            out.append(TimedRun(source.removeprefix("validation:"), shape, c.samples, instructions,
                                n / board.clock_hz, None if nj is None else nj / 1e6, "", phase, source))
    return sorted(out, key=lambda t: (PHASES.index(t.phase), t.run))


def table3_instructions(board: BoardSpec, fw_cal) -> list[tuple[object, float]]:
    """Table III's training-time records with the instructions our firmware retires for the same configuration, as
    predicted by the emulator's firmware calibration (epochs: the record's 20-epoch budget, every epoch improving:
    the paper publishes neither the epochs early stopping ran nor the best epoch)."""

    out = []
    for r in load_records(board.calibration_dir / TABLE3_FILE):
        if r.metric != "time" or r.phase != FITTED_PHASE:
            continue
        fw = price_firmware(fw_cal, r.workload(), float(r.epochs), 0, float(r.epochs))
        instructions = fw.instructions.get(FITTED_PHASE)
        if instructions is None:
            raise EmulatorMapError(f"{r.where}: the {fw_cal.board} firmware calibration cannot predict the "
                                   f"{FITTED_PHASE} instructions of this configuration ({'; '.join(fw.notes)})")
        out.append((r, instructions))
    return out


def timed_runs(board: BoardSpec, emulator: str = EMULATOR, fw_cal=None) -> list[TimedRun]:
    """`table3_instructions` with each record's published energy and the outlier screen's verdict (the screen of
    the Table III calibration, `calibration.load_calibration`)."""

    fw_cal = fw_cal or load_firmware_calibration(emulator)
    flags = {(f.run, f.metric): "; ".join(f.reasons) for f in load_calibration(board).flagged}
    energy = {r.run: r.value for r in load_records(board.calibration_dir / TABLE3_FILE)
              if r.metric == "energy" and r.phase == FITTED_PHASE}
    out = []
    for r, instructions in table3_instructions(board, fw_cal):
        flag = flags.get((r.run, "time"), "") or flags.get((r.run, "energy"), "")
        out.append(TimedRun(r.run, r.task, r.samples, instructions, r.value, energy.get(r.run), flag))
    return out


def build_map(board: str | BoardSpec = "nrf52840dk", emulator: str = EMULATOR,
              platform: PlatformDelta | None = None, fw_cal=None) -> EmulatorMap:
    """Fit the map of `board` from its Table III records and the emulator's current firmware calibration (or
    `fw_cal`, e.g. a snapshot: dse rescore refits the map in memory for the calibration it prices with);
    `platform` is the measured build difference (dse.commands.calibrate.measure_platform_delta)."""

    board = board if isinstance(board, BoardSpec) else load_board(board)
    fw = fw_cal or load_firmware_calibration(emulator)
    source = (f"predicted by the {emulator} firmware calibration (cost_models/microtl_dse/fit.py, fitted on "
              f"{fw.runs} runs of our firmware in {', '.join(fw.files)}) for each Table III configuration; "
              "not measured: our firmware stores its inputs in flash, and Table III's larger sample counts do not "
              "fit in 1 MB, nor are CIFAR-10 / UCI HAR downloads available to the test suite")
    own = own_timed_runs(board, fw)
    if own:
        source += (f"; and for {len({r.source for r in own})} validation run(s) of our firmware timed on the board "
                   "(the configuration, epochs run and best epoch the board reported)")
    table3 = timed_runs(board, emulator, fw)
    return fit_map(table3 + own, board, instructions_source=source, inputs=current_inputs(board, emulator, fw),
                   emulator=emulator, platform=platform, estimates=estimate_sources(fw, emulator),
                   extra_notes=estimate_check(board, fw, table3))


def estimate_sources(fw_cal, emulator: str = EMULATOR) -> dict[str, str]:
    """phase -> how its static cycle estimate is made and predicted, for the phases the emulator's firmware
    calibration has an estimate model of (none when its records carry no estimate)."""
    out = {}
    for phase in PHASES:
        status = (fw_cal.cycles_estimate_status or {}).get(phase, {})
        if not any(s == "fitted" for s in status.values()):
            continue
        cpi = fw_cal.estimate_cpi.get(phase)
        span = f"; estimated CPI {cpi[0]:.3f}-{cpi[2]:.3f} over those runs" if cpi else ""
        out[phase] = (f"per configuration, the {emulator} cycles-estimate model (cost_models/microtl_dse/fit.py, fitted "
                      f"on {fw_cal.estimate_runs} runs' per-block execution counts x Cortex-M4 TRM timing, "
                      f"firmware/cycle_estimate.py: {fw_cal.estimate_source or 'static CM4 timing'}{span}); not "
                      "timed: the nRF52840's flash wait states and cache are not in it")
    return out


def estimate_check(board: BoardSpec, fw_cal, table3: list[TimedRun]) -> tuple[str, ...]:
    """How the static estimate of our firmware compares with the only timed records, Table III's training (the
    paper's firmware on the board): a note, not a fit."""

    if not any(s == "fitted" for s in (fw_cal.cycles_estimate_status or {}).get(FITTED_PHASE, {}).values()):
        return ()
    ratios, cpis = [], []
    records = {x.run: x for x, _ in table3_instructions(board, fw_cal)}
    for r in (t for t in table3 if not t.flag and t.run in records):
        rec = records[r.run]
        est = price_firmware(fw_cal, rec.workload(), float(rec.epochs), 0, float(rec.epochs)).cycles_estimate.get(
            FITTED_PHASE)
        if est:
            ratios.append(r.seconds * board.clock_hz / est)
            cpis.append(est / r.instructions)
    if not ratios:
        return ()
    return (f"static estimate vs Table III (training, {len(ratios)} records): our firmware's estimated training CPI "
            f"{min(cpis):.3f}-{max(cpis):.3f}; Table III's measured cycles are {min(ratios):.3f}-{max(ratios):.3f} x "
            f"(mean {sum(ratios) / len(ratios):.3f} x) our estimate of the same configurations (the paper's firmware "
            "on the board, with flash wait states, vs our code at zero wait states): the estimated phases carry no "
            "such factor",)


# --- the file ----------------------------------------------------------------------------------------------------

def map_path(board: BoardSpec) -> Path:
    """The map file in use: the user's refit (cost_models.user_data) if there is one, else the shipped one."""
    return layered_file(board.calibration_dirs, MAP_FILE)


def user_map_path(board: BoardSpec) -> Path:
    """Where a refit map is written: the user's calibration folder, never the package."""
    return board.user_calibration_dir / MAP_FILE


def _emulator_dir(emulator: str) -> tuple[Path, ...]:
    return load_board(emulator).calibration_dirs


def emulator_calibration(m: EmulatorMap):
    """The emulator's firmware calibration (fitted from its records, cached by microtl_dse.fit)."""

    return load_firmware_calibration(m.emulator, _emulator_dir(m.emulator))


def write_map(m: EmulatorMap, path: str | Path) -> Path:
    """Atomically (a temporary file in the same folder, then os.replace)."""

    path = Path(path)
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(m.to_dict(), indent=1) + "\n")
    return path


def _need(data: dict, key: str, types, where: str):
    if key not in data:
        raise EmulatorMapError(f"{where}: missing key {key}")
    value = data[key]
    if not isinstance(value, types) or isinstance(value, bool):
        raise EmulatorMapError(f"{where}: key {key} has the wrong type ({value!r})")
    return value


def parse_map(data: dict, where: str) -> EmulatorMap:
    """Check every key (one error naming the file and key) and build the map."""
    if not isinstance(data, dict):
        raise EmulatorMapError(f"{where}: not a JSON object")
    if data.get("format") != FORMAT:
        raise EmulatorMapError(f"{where}: key format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("version")
    if version not in READ_VERSIONS or isinstance(version, bool):
        raise EmulatorMapError(f"{where}: key version is {version!r}, expected one of "
                               f"{', '.join(map(str, READ_VERSIONS))}")
    number = (int, float)
    phases_raw = _need(data, "phases", dict, where)
    phases = {}
    for phase in PHASES:
        p = _need(phases_raw, phase, dict, f"{where}, phases")
        at = f"{where}, phases.{phase}"
        cpi = p.get("cpi")
        status = _need(p, "cpi_status", str, at)
        if status not in CPI_STATUS:
            raise EmulatorMapError(f"{at}: key cpi_status is {status!r}; one of {', '.join(CPI_STATUS)}")
        if status == "estimated" and version < 2:
            raise EmulatorMapError(f"{at}: key cpi_status 'estimated' is format 2, the file says version {version}")
        if status in ("uncalibrated", "estimated"):
            if cpi is not None:
                raise EmulatorMapError(f"{at}: key cpi must be null for an {status} phase, got {cpi!r}")
        elif not isinstance(cpi, number) or isinstance(cpi, bool) or not cpi > 0:
            raise EmulatorMapError(f"{at}: key cpi must be a number > 0, got {cpi!r}")
        power = _need(p, "power_w", number, at)
        if not power > 0:
            raise EmulatorMapError(f"{at}: key power_w must be > 0, got {power!r}")
        pstatus = _need(p, "power_status", str, at)
        if pstatus not in POWER_STATUS:
            raise EmulatorMapError(f"{at}: key power_status is {pstatus!r}; one of {', '.join(POWER_STATUS)}")
        phases[phase] = PhaseMap(None if cpi is None else float(cpi), status, _need(p, "cpi_source", str, at),
                                 float(power), pstatus, _need(p, "power_source", str, at))
    try:
        residuals = tuple(MapResidual(**r) for r in _need(data, "residuals", list, where))
    except TypeError as exc:
        raise EmulatorMapError(f"{where}: key residuals: {exc}") from None
    platform = None
    if data.get("platform") is not None:
        raw = _need(data, "platform", dict, where)
        at = f"{where}, platform"
        platform = PlatformDelta(_need(raw, "ram_bytes", int, at), _need(raw, "flash_bytes", int, at),
                                 tuple(_need(raw, "configurations", list, at)), _need(raw, "toolchain", str, at),
                                 _need(raw, "measured", str, at))
    clock = _need(data, "clock_hz", int, where)
    if not clock > 0:
        raise EmulatorMapError(f"{where}: key clock_hz must be > 0, got {clock!r}")
    return EmulatorMap(
        board=_need(data, "board", str, where), emulator=_need(data, "emulator", str, where), clock_hz=clock,
        phases=phases, residuals=residuals, power_check=_need(data, "power_check", dict, where),
        instructions_source=_need(data, "instructions_source", str, where),
        inputs=_need(data, "inputs", dict, where), created=_need(data, "created", str, where),
        platform=platform, notes=tuple(_need(data, "notes", list, where)), version=version)


def read_map(path: str | Path) -> EmulatorMap:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise EmulatorMapError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise EmulatorMapError(f"{path}: not valid JSON ({exc})") from None
    return parse_map(data, str(path))


def load_emulator_map(board: str | BoardSpec = "nrf52840dk") -> EmulatorMap:
    """The board's map file, checked against the board (name, clock) and its current inputs (cached per file)."""
    board = board if isinstance(board, BoardSpec) else load_board(board)
    path = map_path(board)
    try:
        stat = path.stat()
    except OSError:
        raise EmulatorMapError(f"board {board.name!r} has no emulator map: no {path} "
                               f"(fit one: dse calibrate --board {board.name} --refit)") from None
    return _cached(board, path, stat.st_mtime_ns, stat.st_size)


def map_or_none(board: BoardSpec) -> EmulatorMap | None:
    """The board's map, or None when it has none (instructions-only boards never have one)."""
    if board.instructions_only:
        return None
    try:
        return load_emulator_map(board)
    except EmulatorMapError:
        if map_path(board).is_file():
            raise  # a map that is there but broken is an error, not an absent map
        return None


def clear_map_cache() -> None:
    _cached.cache_clear()


@lru_cache(maxsize=8)
def _cached(board: BoardSpec, path: Path, _mtime: int, _size: int) -> EmulatorMap:
    m = read_map(path)
    if m.board != board.name:
        raise EmulatorMapError(f"{path}: key board is {m.board!r}, the file is in the calibration of {board.name!r}")
    if m.clock_hz != board.clock_hz:
        raise EmulatorMapError(f"{path}: key clock_hz is {m.clock_hz}, the board file {board.path.name} says "
                               f"{board.clock_hz}")
    stale = []
    if m.version < VERSION:
        stale.append(f"format {m.version}: fitted before phases without timed records were priced by the static "
                     "cycle estimate")
    try:
        now = current_inputs(board, m.emulator)
    except (OSError, ValueError) as exc:
        now = {}
        stale.append(f"inputs not checked ({' '.join(str(exc).split())})")
    for name, digest in now.items():
        if m.inputs.get(name) != digest:
            stale.append(f"{name} changed since the map was fitted")
    if now:  # the firmware model's code may change too: compare the instructions it now predicts
        try:
            fitted = {r.run: r.instructions for r in m.residuals}

            moved = [abs(n / fitted[r.run] - 1) for r, n in
                     table3_instructions(board, load_firmware_calibration(m.emulator)) if r.run in fitted]
        except (OSError, ValueError) as exc:
            moved = []
            stale.append(f"instructions not checked ({' '.join(str(exc).split())})")
        if moved and max(moved) > 1e-9:
            stale.append(f"the {m.emulator} firmware model now predicts Table III instructions up to "
                         f"{100 * max(moved):.2f}% different from those the map was fitted on")

    return replace(m, stale=tuple(stale))


# --- the report --------------------------------------------------------------------------------------------------

def report(m: EmulatorMap) -> str:
    """Which figure comes from which source, the fitted CPI and power with each record's residual."""
    lines = [f"emulator map of {m.board} (format {m.version}, fitted {m.created}): {m.emulator} instructions -> "
             f"{m.board} time and energy at {m.clock_hz / 1e6:g} MHz",
             f"instructions: {m.instructions_source}",
             "per phase (cycles = instructions x CPI, or the static cycle estimate where estimated; energy = time x "
             "power):"]
    for phase, p in m.phases.items():
        lines.append(f"  {phase:11s} {p.source}")
    if m.platform is not None:
        d = m.platform
        lines.append(f"RAM and flash: our firmware's model (the {m.emulator} firmware calibration: same C code, same "
                     f"nRF52840 memory map) + the {m.board} platform layer, measured by building both: "
                     f"{d.ram_bytes:+d} B static RAM, {d.flash_bytes:+d} B flash ({len(d.configurations)} "
                     f"configurations, {d.toolchain}, {d.measured})")
    else:
        lines.append(f"RAM and flash: our firmware's model (the {m.emulator} firmware calibration); platform layer "
                     "difference not measured")
    pc = m.power_check
    lines.append(f"power check (training): {m.phases['training'].power_source} {pc['fitted_w'] * 1e3:.3f} mW vs "
                 f"board file {pc['board_w'] * 1e3:.3f} mW ({pc['rel_difference']:+.2%})")
    own = [r for r in m.residuals if r.source != TABLE3_SOURCE]
    lines.append("timed records (Table III: the paper's firmware, published training time and energy"
                 + (f"; {len({r.source for r in own})} validation runs of our firmware: DWT cycles, PPK2 energy"
                    if own else "") + "; predicted = instructions x the phase's CPI / clock):")
    lines.append(f"  {'run':24s} {'phase':10s} {'instructions':>12s} {'measured s':>10s} {'predicted s':>11s} "
                 f"{'error':>8s} {'record CPI':>10s} {'power mW':>9s}")
    for r in m.residuals:
        power = "-" if r.power_w is None else f"{r.power_w * 1e3:.2f}"
        flag = f"  FLAGGED, not fitted: {r.flag_reason}" if r.flagged else ""
        lines.append(f"  {r.run:24s} {r.phase:10s} {r.instructions:12.4g} {r.measured_s:10.4g} "
                     f"{r.predicted_s:11.4g} {r.rel_error:+8.2%} {r.record_cpi:10.3f} {power:>9s}{flag}")
    for phase in PHASES:
        errors = [abs(r.rel_error) for r in m.residuals if r.phase == phase and not r.flagged
                  and m.phases[phase].cpi_status == "fitted"
                  and (r.source == TABLE3_SOURCE) == ("Table III" in m.phases[phase].cpi_source)]
        if errors:
            lines.append(f"  {phase} time error over {len(errors)} fitted records: mean |error| "
                         f"{100 * sum(errors) / len(errors):.2f}%, worst {100 * max(errors):.2f}%")
    lines += [f"note: {n}" for n in m.notes]
    lines += [f"STALE: {s} (refit: dse calibrate --board {m.board} --refit)" for s in m.stale]
    return "\n".join(lines)
