"""A deployment: the battery and the duty cycle a product runs the device at (the `[deployment]` table of a study
file, or `dse predict --deployment FILE` / its flags). Plain data, checked in full before anything is priced.

Each adaptation event collects the configuration's N samples and trains the head on the device, or (the BLE
alternative) uploads the N raw samples and downloads the trained head, as the Edge-TL baseline does.
"""
from __future__ import annotations

from dataclasses import dataclass

# key -> (required, minimum is exclusive, meaning)
FIELDS: dict[str, tuple[bool, bool, str]] = {
    "battery_mah": (True, True, "battery capacity (mAh)"),
    "battery_v": (True, True, "battery voltage (V)"),
    "inferences_per_hour": (True, False, "inferences per hour"),
    "adaptations_per_month": (True, False, "adaptation events per month (each: collect N samples, then train)"),
    "sleep_current_ua": (False, True, "sleep current (uA); default: the board file's [sleep].current_ua"),
}


class DeploymentError(ValueError):
    """A deployment value that cannot be used: `key` names it, `value` is what was given."""

    def __init__(self, key: str, value: object, message: str) -> None:
        self.key, self.value = key, value
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True)
class Deployment:
    battery_mah: float
    battery_v: float
    inferences_per_hour: float
    adaptations_per_month: float
    sleep_current_ua: float | None = None  # None: the board's

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if not isinstance(value, str) else f'"{value}"'


def deployment_from_table(table: object) -> Deployment:
    """Check a parsed `[deployment]` table: known keys, numbers, every required key, > 0 (battery, sleep current)
    or >= 0 (rates). Raises DeploymentError naming the key and the value."""
    if not isinstance(table, dict):
        raise DeploymentError("deployment", table, f"must be a table [deployment], got {_show(table)}")
    for key in table:
        if key not in FIELDS:
            raise DeploymentError(key, table[key], f"unknown key (value {_show(table[key])}); known keys: "
                                                   f"{', '.join(FIELDS)}")
    values: dict[str, float] = {}
    for key, (required, strict, meaning) in FIELDS.items():
        if key not in table:
            if required:
                raise DeploymentError(key, None, f"missing: the {meaning}")
            continue
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (
                float("inf"), float("-inf")):
            raise DeploymentError(key, value, f"must be a number, got {_show(value)}")
        if (strict and not value > 0) or value < 0:
            raise DeploymentError(key, value, f"must be {'> 0' if strict else '>= 0'}, got {_show(value)}")
        values[key] = float(value)
    return Deployment(**values)
