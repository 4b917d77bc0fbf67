"""Energy: a phase's time x that phase's average power, a board fact (current x supply voltage).

No energy coefficient is fitted: the board file holds the measured phase currents, and energy records serve to
check them (see `outliers.power_disagreements`).
"""
from __future__ import annotations

from cost_models.board import BoardSpec


def phase_energy_mj(seconds: float, board: BoardSpec, phase: str) -> float:
    return seconds * board.phase_power_w(phase) * 1e3
