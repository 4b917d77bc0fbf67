"""The validation record's schema: what one trial's configuration measured on one board against what the study
predicted for it, with the provenance needed to trust (or later calibrate from) the numbers. Written by firmware
(firmware/validate.py, firmware/records.py: written atomically), read by dse (reports, `dse calibrate import`).

Plain data: nested dataclasses <-> JSON dicts. One record per (trial, board); a failed
validation (does not fit, timeout, protocol error, board unavailable) is a record too, with status "failed" and a
one-line reason, so a study folder keeps every attempt's outcome.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA = 1
STATUS_OK, STATUS_FAILED = "ok", "failed"
NOT_PREDICTED = "not predicted"  # no instruction model for this board


@dataclass
class Provenance:
    """Where the numbers come from: the exact sources and binary, the tools and the machine."""

    sources_sha256: str | None = None  # of the generated + fixed C sources (codegen)
    elf_sha256: str | None = None  # of the binary that ran
    toolchain: str | None = None  # compiler version string
    board_versions: dict[str, str] = field(default_factory=dict)  # QEMU version, plugin, pyOCD + probe, PPK2 ...
    date_utc: str | None = None  # ISO 8601, when the validation started
    host: str | None = None  # machine that ran it (hostname, OS, Python)


@dataclass
class Measured:
    """What the board measured. None: not measured (or not measurable on this board)."""

    accuracy: float | None = None  # correct / test on the board
    correct: int | None = None
    test: int | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    improvements: int | None = None  # validation-loss improvements on the board (each copies the weights)
    steps: int | None = None  # streaming: SGD steps the board took (sum of 1 + min(i, replay)); None in stored mode
    features_fnv: str | None = None  # FNV-1a 32 of the sample store, as the firmware computed it
    features_expected_fnv: str | None = None  # the same hash of the Python (integer reference) features
    features_match: bool | None = None
    flash_bytes: int | None = None  # from the validation ELF (deployed image + harness)
    static_ram_bytes: int | None = None  # .data + .bss (+ reserved sections) from the validation ELF
    stack_bytes: int | None = None  # painted-stack high-water mark
    heap_bytes: int | None = None  # _sbrk high-water mark
    peak_ram_bytes: int | None = None  # static + stack + heap (None when stack or heap is unmeasurable)
    # the deployed image (deployed.c: no harness, no stored inputs), its own ELF built from the same sources: what
    # the study priced. Its peak RAM = its static RAM + the validation run's stack and heap high-water marks (the
    # same kernels and trainer run on the same stack; the harness's calls are shallower than the kernels')
    deployed_flash_bytes: int | None = None
    deployed_static_ram_bytes: int | None = None
    deployed_peak_ram_bytes: int | None = None
    # the harness's own share: validation ELF - deployed ELF (flash; static RAM)
    harness_flash_bytes: int | None = None
    harness_ram_bytes: int | None = None
    instructions: dict[str, int] | None = None  # retired instructions per phase (qemu-an386)
    cycles: dict[str, int] | None = None  # DWT->CYCCNT cycles per phase (nrf52840dk)
    cycles_source: str | None = None  # "DWT->CYCCNT", "host clock (ns)" ...
    seconds: dict[str, float] | None = None  # phase time from cycles / clock (silicon only)
    energy_mj: dict[str, float] | None = None  # per phase (PPK2 only)
    energy_source: str | None = None
    # ESTIMATES, not measurements (qemu-an386): static Cortex-M4 timing x the plugin's block counts per phase
    # (firmware/cycle_estimate.py), and that over the emulated board's clock; the *_source says how
    cycles_estimate: dict[str, int] | None = None
    cycles_estimate_source: str | None = None
    seconds_estimate: dict[str, float] | None = None
    seconds_estimate_source: str | None = None
    wall_s: dict[str, float] = field(default_factory=dict)  # generate, build, run (this machine)


@dataclass
class Predicted:
    """What the study predicted for the same configuration (and the same sample draw, for accuracy)."""

    board: str | None = None  # the board the cost models priced (the study's)
    accuracy: float | None = None  # simulated accuracy of the same draw (repeat 0, study seed)
    accuracy_mean: float | None = None  # mean over the study's repeats, for context
    epochs_run: int | None = None  # epochs the simulation ran for that draw
    # the same draw replayed in the firmware's arithmetic (models.head_replay): the board must match it exactly
    replay_accuracy: float | None = None
    replay_epochs_run: int | None = None
    replay_best_epoch: int | None = None
    replay_steps: int | None = None  # streaming: the replay's SGD steps
    ram_total: int | None = None  # bytes, the deployed image's (what the study priced)
    flash_total: int | None = None
    # the validation harness's own share (bytes; None: not predicted - the calibration has no harness records)
    harness_ram: int | None = None
    harness_flash: int | None = None
    cycles: dict[str, float | None] = field(default_factory=dict)  # per phase; None: uncalibrated
    seconds: dict[str, float | None] = field(default_factory=dict)
    energy_mj: dict[str, float | None] = field(default_factory=dict)
    # per phase, from the instruction model of the board that ran the firmware (qemu-an386); or NOT_PREDICTED
    instructions: dict[str, float] | str = NOT_PREDICTED
    instructions_board: str | None = None  # whose calibration predicted them
    notes: list[str] = field(default_factory=list)


@dataclass
class ValidationRecord:
    study: str
    trial: int
    board: str
    status: str  # "ok" | "failed"
    reason: str = ""  # one line, for a failed validation
    configuration: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    measured: Measured = field(default_factory=Measured)
    predicted: Predicted = field(default_factory=Predicted)
    # measured - predicted: "accuracy_pp" in percentage points, every other key relative ((m - p) / p)
    errors: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    schema: int = SCHEMA

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def key(self) -> str:
        """The study user attribute holding this record."""
        return attr_key(self.board, self.trial)

    @property
    def file_name(self) -> str:
        return file_name(self.trial, self.board)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ValidationRecord":
        data = dict(data)
        if data.get("schema", SCHEMA) != SCHEMA:
            raise ValueError(f"validation record schema {data.get('schema')!r}; this version reads {SCHEMA}")
        data["provenance"] = _build(Provenance, data.get("provenance", {}))
        data["measured"] = _build(Measured, data.get("measured", {}))
        data["predicted"] = _build(Predicted, data.get("predicted", {}))
        return _build(cls, data)


def _build(cls, data: dict[str, Any]):
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown key(s) {', '.join(unknown)}")
    return cls(**data)


def attr_key(board: str, trial: int) -> str:
    return f"validation/{board}/trial-{trial}"


def file_name(trial: int, board: str) -> str:
    return f"trial-{trial}-{board}.json"
