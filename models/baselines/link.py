"""What a baseline's transfers cost over BLE: uplink (samples to the edge/cloud) and downlink (model back).

Both directions use the board's radio facts (payload throughput, radio current at the supply voltage), the paper's
communication assumptions behind Table II; cost_models.radio prices a byte count.
"""
from __future__ import annotations

from dataclasses import dataclass

from cost_models.board import Board
from cost_models.radio import ble_upload


@dataclass(frozen=True)
class LinkCost:
    uplink_bytes: int
    downlink_bytes: int
    uplink_s: float
    downlink_s: float
    uplink_mj: float
    downlink_mj: float

    @property
    def seconds(self) -> float:
        return self.uplink_s + self.downlink_s

    @property
    def energy_mj(self) -> float:
        return self.uplink_mj + self.downlink_mj


def link_cost(uplink_bytes: int, downlink_bytes: int, board: Board) -> LinkCost:
    """Time and radio energy of sending `uplink_bytes` and receiving `downlink_bytes` (same link both ways)."""
    up = ble_upload(uplink_bytes, 1, board)  # ble_upload prices samples x elements bytes: here bytes x 1
    down = ble_upload(downlink_bytes, 1, board)
    return LinkCost(up.bytes, down.bytes, up.seconds, down.seconds, up.energy_mj, down.energy_mj)
