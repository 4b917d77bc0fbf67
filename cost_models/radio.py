"""The alternative MicroTL is compared against: uploading the raw samples over BLE (paper, Table II); and what a
baseline's transfers cost over BLE both ways (`link_cost`: uplink of samples, downlink of a model).

One raw sample is the network input as int8 (1 byte per input element).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - board.py builds on this module (BoardSpec.link)
    from cost_models.board import BoardSpec


@dataclass(frozen=True)
class BleUpload:
    bytes: int
    seconds: float
    energy_mj: float


def ble_upload(samples: int, input_elements: int, board: BoardSpec) -> BleUpload:
    """Bytes = samples x input elements; time at the payload throughput; energy at the radio's power."""
    n = samples * input_elements
    seconds = n * 8 / board.radio_payload_bps
    return BleUpload(n, seconds, seconds * board.radio_power_w * 1e3)


@dataclass(frozen=True)
class LinkCost:
    """What a baseline's transfers cost over BLE: uplink (samples to the edge/cloud) and downlink (model back), with
    the board's radio facts (payload throughput, radio current at the supply voltage): the paper's communication
    assumptions behind Table II."""

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


def link_cost(uplink_bytes: int, downlink_bytes: int, board: BoardSpec) -> LinkCost:
    """Time and radio energy of sending `uplink_bytes` and receiving `downlink_bytes` (same link both ways)."""
    up = ble_upload(uplink_bytes, 1, board)  # ble_upload prices samples x elements bytes: here bytes x 1
    down = ble_upload(downlink_bytes, 1, board)
    return LinkCost(up.bytes, down.bytes, up.seconds, down.seconds, up.energy_mj, down.energy_mj)
