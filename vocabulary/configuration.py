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


MODES = ("stored", "streaming")
# what streaming fixes (one pass of batch-1 steps, the last weights kept); a study's streaming trials take these
STREAMING_FIXED = {"batch": 1, "epochs": 1, "restore_best": False}


@dataclass(frozen=True)
class Configuration:
    """One point of the design space.

    `hidden == 0` means the head is a single FC layer (feature -> classes); otherwise FC(feature -> hidden),
    ReLU, FC(hidden -> classes). `epochs` is the budget; early stopping may end training sooner, and keeps the
    best epoch's weights when `restore_best` (else the last ones).

    `mode` is how the head learns: "stored" (MicroTL: store N features, then train for up to `epochs` with a
    validation split and early stopping) or "streaming" (TinyOL: one SGD step of batch 1 on each sample right
    after its forward pass, plus one step on each of the `replay` most recent earlier features kept in a ring;
    one pass, no validation split, no early stopping, the last weights kept). Streaming therefore fixes batch 1,
    epochs 1 and restore_best off; `replay` is 0 in stored mode.
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
    mode: str = "stored"  # "stored" (MicroTL) or "streaming" (TinyOL)
    replay: int = 0  # streaming only: ring of the K most recent earlier features, each trained with every new sample

    def __post_init__(self) -> None:
        for name in ("hidden", "samples", "epochs", "batch", "patience", "replay"):
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
        if self.mode not in MODES:
            raise ValueError(f"configuration: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.replay < 0:
            raise ValueError(f"configuration: replay must be >= 0, got {self.replay}")
        if self.mode == "stored" and self.replay:
            raise ValueError(f"configuration: replay is a streaming setting; mode 'stored' needs replay 0, "
                             f"got {self.replay}")
        if self.mode == "streaming":
            if self.replay > self.samples:
                raise ValueError(f"configuration: replay must be at most samples ({self.samples}), got {self.replay}")
            for name, value in STREAMING_FIXED.items():
                if getattr(self, name) != value:
                    raise ValueError(f"configuration: mode 'streaming' trains one pass with batch 1 and keeps the "
                                     f"last weights: {name} must be {str(value).lower()}, got "
                                     f"{str(getattr(self, name)).lower()}")

    @property
    def streaming(self) -> bool:
        return self.mode == "streaming"

    @property
    def train_samples(self) -> int:
        """Samples used for SGD; the rest (10%, at least 1) is the validation set for early stopping."""
        return self.samples - self.val_samples

    @property
    def val_samples(self) -> int:
        """Streaming has no validation split: every sample trains the head once."""
        return 0 if self.streaming else validation_count(self.samples)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Configuration":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"configuration: unknown key(s) {', '.join(unknown)}")
        return cls(**data)
