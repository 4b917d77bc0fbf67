"""The paper's op-count predictor: counts + board facts + a fitted calibration -> costs of the published firmware
(stored mode only). Pure: calibration prices its residuals with it, prediction its configurations.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from cost_models.board import BoardSpec
from cost_models.energy import phase_energy_mj
from cost_models.paper.latency import phase_counts
from cost_models.paper.memory import flash_bytes, ram_bytes, scaled
from cost_models.pricing import PhaseCost, Prediction
from cost_models.radio import ble_upload
from cost_models.workload import Workload
from vocabulary.phases import DEVICE_PHASES

if TYPE_CHECKING:  # pragma: no cover - calibration builds on this module (its residuals are priced here)
    from cost_models.paper.calibration import Calibration


def check_paper_mode(w: Workload) -> None:
    """The published firmware (Table III's op-count model) stores N samples and trains for E epochs: it has no
    streaming mode, so a streaming configuration is refused rather than priced as stored."""
    if w.streaming:
        raise ValueError("mode 'streaming' is not priced for firmware 'paper': the published firmware (Table III's "
                         "op-count model) trains stored samples only; use firmware 'microtl-dse' or mode 'stored'")


def price(w: Workload, board: BoardSpec, calibration: Calibration, epochs: float) -> Prediction:
    """The pure predictor: counts + board facts + calibration -> costs (the published firmware: stored mode only)."""
    check_paper_mode(w)
    ram = scaled(ram_bytes(w), calibration.scales("ram"))
    flash = scaled(flash_bytes(w), calibration.scales("flash"))
    phases: dict[str, PhaseCost] = {}
    notes: list[str] = []
    for phase in DEVICE_PHASES:
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
            phases[phase] = PhaseCost(c, seconds, phase_energy_mj(seconds, board, phase),
                                      source=f"cycles: op-count model fitted on {', '.join(calibration.files)}; "
                                             f"power: board file {board.path.name}")
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
        firmware="paper",
        sources={"ram": f"op-count model, term scales fitted on {', '.join(calibration.files)}",
                 "flash": f"op-count model, term scales fitted on {', '.join(calibration.files)}"},
    )

