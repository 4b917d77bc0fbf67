"""The head's plain types, shared by the torch trainer (models.head) and the firmware-arithmetic replay
(models.head_replay): the layers, the SGD settings, the streaming schedule and a training result. Its own module so
that neither trainer imports the other's types back."""
from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass

import numpy as np

from vocabulary.configuration import DOMAINS, TRAINING, Configuration

Layers = list[tuple[np.ndarray, np.ndarray]]  # [(W (out, in), b (out,))], input side first, float32


def _from_config(cls, config: Configuration) -> "SGDParams":
    return cls(**{name: getattr(config, name) for name in TRAINING})


# The head's SGD settings: the Configuration's training fields (vocabulary.configuration.TRAINING: epochs, batch,
# lr, momentum, decay, patience, restore_best, mode, replay), with its types and defaults, derived rather than
# declared again. "streaming" mode: batch-1 steps in collection order with a replay ring of `replay` (models.head).
# Built without a Configuration's task, model and cut (tests, benchmarks and the paper's setups train heads alone),
# so it does not check the values: Configuration does.
SGDParams = make_dataclass(
    "SGDParams",
    [(name, d.kind) if d.required else (name, d.kind, field(default=d.default))
     for name, d in DOMAINS.items() if name in TRAINING],
    frozen=True,
    namespace={"__module__": __name__, "from_config": classmethod(_from_config),
               "streaming": property(lambda self: self.mode == "streaming", doc="mode == \"streaming\"")})


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
