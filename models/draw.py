"""One simulated repeat in full: the sample draw a firmware run reproduces, and what Python expects of it.

`draw(configuration, repeat, seed)` is repeat `repeat` of `models.simulate.simulate(configuration, repeats, seed)`:
the same sample draw and head seed (`derive_seeds`), the samples' int8 (or int16) features in store order as the
firmware must fill its store, the target test inputs, the head trained on the draw (the study's trainer:
`models.head`) and the head replayed in the firmware's arithmetic (`models.head_replay`, what the board must print
bit for bit). firmware/codegen.py writes C from it; validation compares the board with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocabulary.configuration import Configuration
from .data import draw_samples, max_balanced
from .head import SGDParams, accuracy, forward, train_head
from .head_params import TrainResult
from .head_replay import replay_accuracy, replay_head
from .quantize import QuantizedModel, quantize_input
from .simulate import cut_features, derive_seeds, prepare
from .zoo import get_model

_STORE_DTYPES = {8: np.dtype(np.int8), 16: np.dtype("<i2")}  # feature bits -> the store's little-endian dtype


@dataclass(eq=False)
class Draw:
    """Repeat `repeat` of seed `seed` for `configuration`: the samples, their features, the test set, both heads."""

    configuration: Configuration
    repeat: int
    seed: int
    draw_seed: int
    head_seed: int
    qmodel: QuantizedModel  # the frozen network the features come from (its layers up to the cut go to the board)
    classes: int
    train_indices: np.ndarray  # indices into the target pool, in store order (rows 0..Nt-1)
    val_indices: np.ndarray  # rows Nt..N-1 (streaming: none)
    test_indices: np.ndarray  # indices into the target test split
    features: np.ndarray  # (N, F) int8 or little-endian int16: the store as the firmware must fill it
    feature_scale: float  # 2^-frac bits of the stored features
    collect_inputs: np.ndarray  # (N, ...) int8: the collection inputs in store order, quantized for the network
    collect_labels: np.ndarray
    test_inputs: np.ndarray  # (T, ...) int8: the target test inputs, quantized
    test_labels: np.ndarray
    test_features: np.ndarray  # (T, F) float32: the test inputs' features, dequantized
    simulated: TrainResult  # the head the study's trainer (models.head) trains on this draw and head seed
    simulated_accuracy: float  # on the test inputs (nan without any); streaming: evaluated in the firmware's order
    simulated_correct: int
    replayed: TrainResult  # the same draw through the firmware's arithmetic (models.head_replay)
    replayed_accuracy: float
    replayed_correct: int

    @property
    def store_indices(self) -> np.ndarray:
        return np.concatenate([self.train_indices, self.val_indices])


def draw(configuration: Configuration, repeat: int, seed: int, *, data_path: str | Path | None = None,
         source_labels=None, target_labels=None, test_limit: int | None = None,
         cache_dir: str | Path | None = None) -> Draw:
    """Repeat `repeat` of seed `seed` (deterministic); the first `test_limit` target test inputs (None: all)."""
    config = configuration
    if repeat < 0:
        raise ValueError(f"draw: repeat must be >= 0, got {repeat}")
    get_model(config.model).check_cut(config.cut)
    prepare(config.task, config.model, config.scheme, data_path, cache_dir, source_labels, target_labels,
            cuts=(config.cut,))
    prep, pool, x_test_deq, y_test = cut_features(config, data_path, cache_dir, source_labels, target_labels)
    data = prep.data
    y_pool = data.target_pool.y
    classes = data.target_classes
    limit = max_balanced(y_pool, classes)
    if config.samples > limit:
        raise ValueError(f"samples = {config.samples} is more than the target pool of task {config.task!r} "
                         f"can give balanced; the maximum is {limit}")
    draw_seed, head_seed = derive_seeds(seed, repeat)
    train_idx, val_idx = draw_samples(y_pool, config.samples, draw_seed, config.val_samples)  # streaming: no val
    n_test = len(y_test) if test_limit is None else min(int(test_limit), len(y_test))
    test_idx = np.arange(n_test)
    store_idx = np.concatenate([train_idx, val_idx])
    cut_spec = get_model(config.model).layer(config.cut)
    bits = prep.qmodel.layer(config.cut).out_bits  # a width no store holds: codegen says so
    store_dtype = _STORE_DTYPES.get(bits, pool.q.dtype)
    if pool.q.dtype != store_dtype or pool.q.shape[1] * bits // 8 != cut_spec.bytes:
        raise ValueError(f"draw: the features at {config.cut} are {pool.q.dtype} x {pool.q.shape[1]}; the zoo "
                         f"stores {cut_spec.bytes} bytes of {cut_spec.dtype} per feature")
    # little-endian, as the firmware's store lies in memory on the host and on the Cortex-M (the FNV input)
    features = np.ascontiguousarray(pool.q[store_idx], dtype=store_dtype)

    params = SGDParams.from_config(config)
    train, val = (pool.subset(train_idx), y_pool[train_idx]), (pool.subset(val_idx), y_pool[val_idx])
    result = train_head(*train, *val, config.hidden, classes, params, head_seed)
    x_eval, y_eval = x_test_deq[test_idx], y_test[test_idx]
    correct = int((forward(result.weights, x_eval).argmax(axis=1) == y_eval).sum()) if n_test else 0
    sim_acc = accuracy(result.weights, x_eval, y_eval) if n_test else float("nan")
    if config.streaming and n_test:  # evaluated as models.simulate evaluates streaming: in the firmware's order
        sim_acc, correct = replay_accuracy(result.weights, x_eval, y_eval, pool.scale)
    replay = replay_head(*train, *val, config.hidden, classes, params, head_seed)
    replay_acc, replay_correct = replay_accuracy(replay.weights, x_eval, y_eval, pool.scale)
    return Draw(configuration=config, repeat=repeat, seed=seed, draw_seed=draw_seed, head_seed=head_seed,
                qmodel=prep.qmodel, classes=classes, train_indices=train_idx, val_indices=val_idx,
                test_indices=test_idx, features=features, feature_scale=float(pool.scale),
                collect_inputs=quantize_input(prep.qmodel, data.target_pool.x[store_idx]),
                collect_labels=y_pool[store_idx],
                test_inputs=quantize_input(prep.qmodel, data.target_test.x[test_idx]), test_labels=y_test[test_idx],
                test_features=x_eval, simulated=result, simulated_accuracy=float(sim_acc), simulated_correct=correct,
                replayed=replay, replayed_accuracy=float(replay_acc), replayed_correct=replay_correct)
