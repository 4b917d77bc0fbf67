"""The pure pricing layer: the shape of a prediction (`Prediction`, `PhaseCost`), whichever model priced it - the paper's op-count model
(cost_models/paper/price.py) or our firmware's (cost_models/microtl_dse/price.py). Calibration and prediction both sit
on it; it imports neither.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from cost_models.radio import BleUpload


@dataclass(frozen=True)
class PhaseCost:
    cycles: float | None  # None: uncalibrated on this board
    seconds: float | None
    energy_mj: float | None
    note: str = ""
    source: str = ""  # where cycles, time and energy come from


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
    instructions: dict[str, float | None] = field(default_factory=dict)  # predicted, per phase (our firmware)
    firmware: str = ""  # "microtl-dse" (ours) | "paper" (the published firmware's Table III fit)
    sources: dict[str, str] = field(default_factory=dict)  # figure (ram, flash, instructions, ...) -> its source
    # our firmware: the static Cortex-M4 cycle estimate per phase, predicted (None: no estimate model); an estimate
    # at zero wait states, not the board's cycles (those are in `phases`)
    cycles_estimate: dict[str, float | None] = field(default_factory=dict)
    # our firmware: ram / flash price the deployed image; the validation harness's own share apart (None: the
    # calibration has no harness records, or the published firmware)
    harness_ram: int | None = None
    harness_flash: int | None = None
    mode: str = "stored"  # the configuration's training mode (vocabulary.configuration.MODES)
    # streaming: collection and training interleave, so what one collected sample costs the device (its forward,
    # its step, its ring steps and push): (collection + training) / N, in seconds where both phases are timed and in
    # predicted instructions on our firmware (None: stored mode, or a phase not calibrated)
    sample_latency_s: float | None = None
    sample_instructions: float | None = None

    def to_dict(self) -> dict[str, float | int | str]:
        """Flat plain values (Optuna user attributes, CSV columns). Uncalibrated phases have no time keys;
        `phases_uncalibrated` names them."""
        out: dict[str, float | int | str] = {"board": self.board, "firmware": self.firmware, "mode": self.mode}
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
        if self.sample_latency_s is not None:
            out["sample_latency_s"] = float(self.sample_latency_s)
        if self.sample_instructions is not None:
            out["sample_instructions"] = float(self.sample_instructions)
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
