"""The configuration: the one vocabulary the search proposes, models evaluate, cost models price and
firmware builds. Defined once, here."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from numbers import Real


def validation_count(samples: int) -> int:
    """Validation samples out of `samples` drawn ones: 10%, at least 1 (none when only 1 sample is drawn).

    The one rule shared by the configuration, the sample draw (models.data) and the firmware.
    """
    return max(1, round(samples * 0.1)) if samples > 1 else 0


@dataclass(frozen=True)
class Configuration:
    """One point of the design space.

    `hidden == 0` means the head is a single FC layer (feature -> classes); otherwise FC(feature -> hidden),
    ReLU, FC(hidden -> classes). `epochs` is the budget; early stopping may end training sooner, and keeps the
    best epoch's weights when `restore_best` (else the last ones).
    """

    task: str
    model: str
    cut: str
    hidden: int
    samples: int
    epochs: int
    batch: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    decay: float = 1e-4
    patience: int = 5
    scheme: str = "q7"
    restore_best: bool = True  # early stopping restores the best epoch's weights (a copy: 4 B per head parameter)

    def __post_init__(self) -> None:
        for name in ("hidden", "samples", "epochs", "batch", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"configuration: {name} must be an integer, got {value!r}")
        if not isinstance(self.restore_best, bool):
            raise ValueError(f"configuration: restore_best must be true or false, got {self.restore_best!r}")
        for name in ("lr", "momentum", "decay"):
            value = getattr(self, name)
            if not isinstance(value, Real) or isinstance(value, bool):
                raise ValueError(f"configuration: {name} must be a number, got {value!r}")
        if self.hidden < 0:
            raise ValueError(f"configuration: hidden must be >= 0, got {self.hidden}")
        for name in ("samples", "epochs", "batch", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"configuration: {name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"configuration: lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"configuration: momentum must be in [0, 1), got {self.momentum}")
        if self.decay < 0:
            raise ValueError(f"configuration: decay must be >= 0, got {self.decay}")

    @property
    def train_samples(self) -> int:
        """Samples used for SGD; the rest (10%, at least 1) is the validation set for early stopping."""
        return self.samples - self.val_samples

    @property
    def val_samples(self) -> int:
        return validation_count(self.samples)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Configuration":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"configuration: unknown key(s) {', '.join(unknown)}")
        return cls(**data)
