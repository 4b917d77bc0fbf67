"""Board descriptions: physical facts (clock, memory sizes, supply, currents) read from `boards/<name>.toml`.

A board file holds facts with their source, never fitted numbers; fitted numbers come from calibration records
(see `calibration`). Keeping boards as data lets a new board be added without touching code.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cost_models.radio import LinkCost, link_cost
from cost_models.user_data import user_root

BOARDS_DIR = Path(__file__).parent / "boards"

# section -> key -> accepted Python types. Every section also needs a `source` string. A board with
# `instructions_only = true` (an emulator: no clock, no power figures) needs only [cpu].core and [memory].
_SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "cpu": {"core": (str,), "clock_hz": (int,)},
    "memory": {"ram_bytes": (int,), "flash_bytes": (int,)},
    "power": {"supply_v": (int, float), "inference_current_ma": (int, float), "training_current_ma": (int, float)},
    "radio": {"phy_bps": (int,), "payload_bps": (int,), "current_ma": (int, float)},
}
# Optional sections: older or user board files may lack them; what needs them says so (cost_models.lifetime).
_OPTIONAL: dict[str, dict[str, tuple[type, ...]]] = {
    "sleep": {"current_ua": (int, float)},  # idle current between wake-ups (System ON, RAM retained)
}


class BoardSpecError(ValueError):
    """A board that does not exist or whose file is malformed (firmware.boards.BoardError: a board that could not run
    the firmware)."""


@dataclass(frozen=True)
class BoardSpec:
    """A board's description (its file's facts, what the cost models price with); the board that runs a firmware
    is firmware.boards.Board."""

    name: str
    description: str
    core: str
    clock_hz: int | None  # None on instructions-only boards
    ram_bytes: int
    flash_bytes: int
    supply_v: float | None
    inference_current_ma: float | None
    training_current_ma: float | None
    radio_phy_bps: int | None
    radio_payload_bps: int | None
    radio_current_ma: float | None
    sources: tuple[tuple[str, str], ...]  # (section, source)
    path: Path
    instructions_only: bool = False  # an emulated board: retired instructions, no clock, no power, no radio
    sleep_current_ua: float | None = None  # [sleep].current_ua; None: the board file does not say

    def phase_power_w(self, phase: str) -> float:
        """Average power of a phase: collection runs int8 inference, training runs the float32 head."""
        if phase == "collection":
            return self.inference_current_ma * 1e-3 * self.supply_v
        if phase == "training":
            return self.training_current_ma * 1e-3 * self.supply_v
        raise ValueError(f"board {self.name}: no power figure for phase {phase!r}; phases: collection, training")

    def sources_of(self, section: str) -> str:
        """Where the board file says the facts of `section` come from."""
        return next((src for sec, src in self.sources if sec == section), "")

    @property
    def radio_power_w(self) -> float:
        return self.radio_current_ma * 1e-3 * self.supply_v

    def link(self, uplink_bytes: int, downlink_bytes: int) -> LinkCost:
        """What sending `uplink_bytes` and receiving `downlink_bytes` over this board's BLE costs (radio.link_cost):
        the models' baselines price their transfers through the board they are given, without importing cost_models."""
        return link_cost(uplink_bytes, downlink_bytes, self)

    @property
    def calibration_dir(self) -> Path:
        """Where this board's measurement records live: `<boards dir>/../calibration/<name>`."""
        return self.path.parent.parent / "calibration" / self.name

    @property
    def user_calibration_dir(self) -> Path:
        """Where this board's calibration imports and refits are written (cost_models.user_data): the user's
        calibration folder for a packaged board, `calibration_dir` for a board file of the user's own."""
        if self.path.resolve().parent != BOARDS_DIR.resolve():
            return self.calibration_dir
        return user_root() / self.name

    @property
    def calibration_dirs(self) -> tuple[Path, ...]:
        """The folders records are read from, in order: the shipped defaults, then the user's."""
        dirs = [self.calibration_dir.resolve(), self.user_calibration_dir.resolve()]
        return tuple(dict.fromkeys(dirs))


def list_boards() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))


def load_board(name_or_path: str | Path) -> BoardSpec:
    """A packaged board by name (e.g. "nrf52840dk"), or a board file by path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text:
        return _load_file(Path(text).resolve())
    path = BOARDS_DIR / f"{text}.toml"
    if not path.is_file():
        known = ", ".join(list_boards()) or "none"
        raise BoardSpecError(f"unknown board {text!r}; known boards: {known} (in {BOARDS_DIR})")
    return _load_file(path)


@lru_cache(maxsize=32)
def _load_file(path: Path) -> BoardSpec:
    if not path.is_file():
        raise BoardSpecError(f"board file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BoardSpecError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise BoardSpecError(f"{path}: not a board file (binary, not UTF-8 TOML text)") from None
    except OSError as exc:
        raise BoardSpecError(f"{path}: cannot read ({exc.strerror})") from None
    values: dict[str, object] = {}
    sources = []
    only = data.get("instructions_only", False)
    if not isinstance(only, bool):
        raise BoardSpecError(f"{path}: instructions_only must be true or false, got {only!r}")
    for section, keys in _SCHEMA.items():
        if only and section in ("power", "radio"):
            continue
        if only and section == "cpu":
            keys = {"core": (str,)}
        table = data.get(section)
        if not isinstance(table, dict):
            raise BoardSpecError(f"{path}: missing section [{section}]")
        _read_section(path, section, table, keys, values, sources)
    for section, keys in _OPTIONAL.items():
        if section in data and not only:
            _read_section(path, section, data[section], keys, values, sources)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise BoardSpecError(f"{path}: missing key name")
    return BoardSpec(
        name=name,
        description=str(data.get("description", "")),
        core=values["cpu.core"],
        clock_hz=values.get("cpu.clock_hz"),
        ram_bytes=values["memory.ram_bytes"],
        flash_bytes=values["memory.flash_bytes"],
        supply_v=_float(values.get("power.supply_v")),
        inference_current_ma=_float(values.get("power.inference_current_ma")),
        training_current_ma=_float(values.get("power.training_current_ma")),
        radio_phy_bps=values.get("radio.phy_bps"),
        radio_payload_bps=values.get("radio.payload_bps"),
        radio_current_ma=_float(values.get("radio.current_ma")),
        sources=tuple(sources),
        path=path,
        instructions_only=only,
        sleep_current_ua=_float(values.get("sleep.current_ua")),
    )


def _read_section(path: Path, section: str, table, keys, values: dict, sources: list) -> None:
    """One section: every key (and `source`) required, of its type, numbers > 0 (optional sections: when present)."""
    if not isinstance(table, dict):
        raise BoardSpecError(f"{path}: [{section}] must be a table, got {table!r}")
    for key, types in {**keys, "source": (str,)}.items():
        if key not in table:
            raise BoardSpecError(f"{path}: missing key [{section}].{key}")
        value = table[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise BoardSpecError(f"{path}: [{section}].{key} has the wrong type ({value!r})")
        if key != "source" and not isinstance(value, str) and not value > 0:
            raise BoardSpecError(f"{path}: [{section}].{key} must be > 0, got {value!r}")
        values[f"{section}.{key}"] = value
    sources.append((section, table["source"]))


def _float(value) -> float | None:
    return None if value is None else float(value)
