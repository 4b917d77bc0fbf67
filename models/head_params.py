"""The head's plain types, shared by the torch trainer (models.head) and the firmware-arithmetic replay
(models.head_replay): the layers, the SGD settings, the streaming schedule and a training result. Its own module so
that neither trainer imports the other's types back."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vocabulary.configuration import Configuration

Layers = list[tuple[np.ndarray, np.ndarray]]  # [(W (out, in), b (out,))], input side first, float32


@dataclass(frozen=True)
class SGDParams:
    lr: float = 0.01
    momentum: float = 0.9
    decay: float = 1e-4
    batch: int = 8
    epochs: int = 20
    patience: int = 5
    restore_best: bool = True  # keep the best epoch's weights (else the last epoch's)
    mode: str = "stored"  # "streaming": batch-1 steps in collection order with a replay ring (module docstring)
    replay: int = 0  # streaming: ring size K

    @classmethod
    def from_config(cls, config: Configuration) -> "SGDParams":
        return cls(config.lr, config.momentum, config.decay, config.batch, config.epochs, config.patience,
                   config.restore_best, config.mode, config.replay)

    @property
    def streaming(self) -> bool:
        return self.mode == "streaming"


def stream_schedule(n: int, replay: int) -> list[int]:
    """The samples the streaming trainer steps on, in order: for sample i, i itself, then the ring's
    max(0, i - K) .. i - 1 (oldest first). len = sum_i (1 + min(i, K))."""
    order: list[int] = []
    for i in range(n):
        order.append(i)
        order.extend(range(max(0, i - replay), i))
    return order


@dataclass(eq=False)
class TrainResult:
    weights: Layers  # kept weights: the best (lowest validation loss) with restore_best, else the last
    epochs_run: int
    best_epoch: int  # 1-based epoch of the kept weights; 0: the initial ones (no finite validation loss)
    val_losses: list[float] = field(default_factory=list)
    steps: int = 0  # SGD steps taken (streaming: sum of 1 + min(i, K))
