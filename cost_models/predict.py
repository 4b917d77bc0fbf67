"""Prediction: what one configuration costs on one board (RAM, flash, time, energy, and the BLE alternative).

`predict` validates and counts, `price` is the pure predictor on counts. Phases without calibration on the board
are reported as uncalibrated (None) rather than guessed; totals sum the calibrated phases and name them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from models.config import Configuration

from .board import Board, load_board
from .calibration import Calibration, load_calibration
from .energy import phase_energy_mj
from .latency import PHASES, phase_counts
from .memory import flash_bytes, ram_bytes, scaled
from .radio import BleUpload, ble_upload
from .workload import Workload, workload_from_config


@dataclass(frozen=True)
class PhaseCost:
    cycles: float | None  # None: uncalibrated on this board
    seconds: float | None
    energy_mj: float | None
    note: str = ""


@dataclass(frozen=True)
class Prediction:
    board: str
    ram: dict[str, int]  # bytes per term
    ram_total: int
    flash: dict[str, int]
    flash_total: int
    phases: dict[str, PhaseCost]
    latency_s: float  # sum over phases_included
    energy_mj: float  # sum over phases_included
    phases_included: tuple[str, ...]
    ble_upload: BleUpload | None  # None on boards without a radio (instructions-only boards)
    fits_ram: bool
    fits_flash: bool
    notes: tuple[str, ...]
    instructions: dict[str, float | None] = field(default_factory=dict)  # predicted, per phase (emulated boards)

    def to_dict(self) -> dict[str, float | int | str]:
        """Flat plain values (Optuna user attributes, CSV columns). Uncalibrated phases have no time keys;
        `phases_uncalibrated` names them."""
        out: dict[str, float | int | str] = {"board": self.board}
        out.update({f"ram.{k}": v for k, v in self.ram.items()})
        out["ram_total"] = self.ram_total
        out.update({f"flash.{k}": v for k, v in self.flash.items()})
        out["flash_total"] = self.flash_total
        for phase, cost in self.phases.items():
            if cost.cycles is not None:
                out[f"cycles.{phase}"] = float(cost.cycles)
                out[f"time.{phase}_s"] = float(cost.seconds)
                out[f"energy.{phase}_mj"] = float(cost.energy_mj)
        out["latency_s"] = float(self.latency_s)
        out["energy_mj"] = float(self.energy_mj)
        out["phases_included"] = ",".join(self.phases_included)
        out["phases_uncalibrated"] = ",".join(p for p in self.phases if p not in self.phases_included)
        if self.ble_upload is not None:
            out["ble.bytes"] = self.ble_upload.bytes
            out["ble.seconds"] = float(self.ble_upload.seconds)
            out["ble.energy_mj"] = float(self.ble_upload.energy_mj)
        out.update({f"instructions.{k}": float(v) for k, v in self.instructions.items() if v is not None})
        out["fits_ram"] = int(self.fits_ram)
        out["fits_flash"] = int(self.fits_flash)
        out["notes"] = "; ".join(self.notes)
        return out


def predict(
    config: Configuration,
    board: str | Board = "nrf52840dk",
    epochs_run: float | None = None,
    *,
    classes: int | None = None,
    calibration: Calibration | None = None,
    test_inputs: int = 0,
    best_epoch: float | None = None,
    firmware_calibration=None,
) -> Prediction:
    """Cost of `config` on `board`. `epochs_run` (default: config.epochs) is the mean number of epochs actually
    run, e.g. under early stopping; `classes` overrides the task's class count (npz tasks); `calibration`
    defaults to the board's (fitted once per process).

    Instructions-only boards (qemu-an386) are priced by the firmware model (firmware_fit): instructions per phase,
    RAM and flash of this project's firmware. There `test_inputs` is the evaluation's test inputs (also stored in
    flash) and `best_epoch` the epoch of the best weights (default: estimated from epochs_run and patience);
    `firmware_calibration` overrides the board's fitted one (e.g. a refit)."""
    board = board if isinstance(board, Board) else load_board(board)
    epochs = float(config.epochs if epochs_run is None else epochs_run)
    if not 0 < epochs <= config.epochs:
        raise ValueError(f"epochs_run must be in (0, {config.epochs}] (the configuration's budget), got {epochs_run!r}")
    workload = workload_from_config(config, classes)
    if board.instructions_only:
        from .firmware_fit import load_firmware_calibration
        from .firmware_model import estimated_best_epoch

        best = estimated_best_epoch(epochs, config.epochs, config.patience) if best_epoch is None else best_epoch
        return price_emulated(workload, board, firmware_calibration or load_firmware_calibration(board), epochs,
                              test_inputs, best)
    return price(workload, board, calibration or load_calibration(board), epochs)


def price_emulated(w: Workload, board: Board, cal, epochs: float, test: int, best_epoch: float) -> Prediction:
    """An instructions-only board: predicted instructions per phase, RAM and flash; no time, energy or radio."""
    from .firmware_fit import price_firmware

    fw = price_firmware(cal, w, epochs, test, best_epoch)
    why = f"{board.name} has no clock: instructions only"
    return Prediction(
        board=board.name, ram=fw.ram, ram_total=fw.ram_total, flash=fw.flash, flash_total=fw.flash_total,
        phases={p: PhaseCost(None, None, None, why) for p in PHASES}, latency_s=0.0, energy_mj=0.0,
        phases_included=(), ble_upload=None, fits_ram=fw.ram_total <= board.ram_bytes,
        fits_flash=fw.flash_total <= board.flash_bytes, notes=(why, *fw.notes), instructions=fw.instructions,
    )


def price(w: Workload, board: Board, calibration: Calibration, epochs: float) -> Prediction:
    """The pure predictor: counts + board facts + calibration -> costs."""
    ram = scaled(ram_bytes(w), calibration.scales("ram"))
    flash = scaled(flash_bytes(w), calibration.scales("flash"))
    phases: dict[str, PhaseCost] = {}
    notes: list[str] = []
    for phase in PHASES:
        fit = calibration.phases.get(phase)
        if fit is None:
            c, why = None, f"no {phase} records for {board.name}"
        else:
            c, why = fit.cycles(phase_counts(phase, w, epochs))
        if c is None:
            phases[phase] = PhaseCost(None, None, None, why)
            notes.append(f"{phase} phase uncalibrated: {why}")
        else:
            seconds = c / board.clock_hz
            phases[phase] = PhaseCost(c, seconds, phase_energy_mj(seconds, board, phase))
    included = tuple(p for p, cost in phases.items() if cost.cycles is not None)
    ram_total = sum(ram.values())
    flash_total = sum(flash.values())
    return Prediction(
        board=board.name,
        ram=ram,
        ram_total=ram_total,
        flash=flash,
        flash_total=flash_total,
        phases=phases,
        latency_s=sum(phases[p].seconds for p in included),
        energy_mj=sum(phases[p].energy_mj for p in included),
        phases_included=included,
        ble_upload=ble_upload(w.samples, w.input_elements, board),
        fits_ram=ram_total <= board.ram_bytes,
        fits_flash=flash_total <= board.flash_bytes,
        notes=tuple(notes),
    )
