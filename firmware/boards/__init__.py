"""Boards by name: "host" (native process), "qemu-an386" (emulated Cortex-M4, boards/qemu.py) and "nrf52840dk"
(the real board, boards/nrf52840dk.py). Implementations are imported only when asked for."""
from __future__ import annotations

from importlib import import_module

from .base import Board, BoardError, FirmwareTimeout, RunResult

# name -> (module, class)
BOARDS = {
    "host": ("firmware.boards.host", "HostBoard"),
    "qemu-an386": ("firmware.boards.qemu", "QemuBoard"),
    "nrf52840dk": ("firmware.boards.nrf52840dk", "Nrf52840DkBoard"),
}


def list_boards() -> list[str]:
    return list(BOARDS)


def get_board(name: str, **options) -> Board:
    """The board named `name` (options go to its constructor); ValueError naming the known boards otherwise."""
    try:
        module, cls = BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None
    return getattr(import_module(module), cls)(**options)


__all__ = ["BOARDS", "Board", "BoardError", "FirmwareTimeout", "RunResult", "get_board", "list_boards"]
