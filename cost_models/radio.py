"""The alternative MicroTL is compared against: uploading the raw samples over BLE (paper, Table II).

One raw sample is the network input as int8 (1 byte per input element).
"""
from __future__ import annotations

from dataclasses import dataclass

from .board import Board


@dataclass(frozen=True)
class BleUpload:
    bytes: int
    seconds: float
    energy_mj: float


def ble_upload(samples: int, input_elements: int, board: Board) -> BleUpload:
    """Bytes = samples x input elements; time at the payload throughput; energy at the radio's power."""
    n = samples * input_elements
    seconds = n * 8 / board.radio_payload_bps
    return BleUpload(n, seconds, seconds * board.radio_power_w * 1e3)
