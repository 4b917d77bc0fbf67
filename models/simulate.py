"""Accuracy of one configuration: the MicroTL run simulated `repeats` times (new sample draw and head init each).

Everything that does not depend on the trial - task data, the pretrained and quantized network, the integer
features of the target pool and test set at each cut - is cached in-process, so a study's trials cost only head
training.
The pretrained weights and the features are also cached on disk (models.pretrain, models.feature_cache).
Features are int8, or int16 at a cut whose layer outputs int16 (2 bytes per element, as the zoo counts them).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from vocabulary.configuration import Configuration
from .data import TaskData, draw_samples, load_task, max_balanced
from .feature_cache import cached_features, weights_hash
from .features import Features, dequantize
from .head import SGDParams, accuracy, train_heads
from .head_replay import replay_accuracy
from .network import predict
from .pretrain import Pretrained, cache_root, pretrain
from .quantize import QuantizedModel, agreement, forward_int, get_scheme, quantize, quantize_input
from .zoo import get_model


@dataclass
class AccuracyStats:
    """Target-test top-1 accuracy over repeats. `std` is the sample standard deviation (ddof=1; 0.0 for one
    repeat): the repeats are a sample of the random draws a user could make."""

    mean: float
    std: float
    per_repeat: list[float]
    epochs_mean: float  # epochs actually run (early stopping)
    epochs_per_repeat: list[int]
    feature_bytes: int  # bytes of one stored feature at the cut
    test_size: int  # target test samples each accuracy is measured on


@dataclass(eq=False)
class Prepared:
    """What a (task, model, scheme) needs before any trial: data, pretrained network, quantized model, and how
    faithful the integer network is on the source test set."""

    data: TaskData
    pretrained: Pretrained
    qmodel: QuantizedModel
    float_accuracy: float  # source_test top-1 of the float network
    int_accuracy: float  # source_test top-1 of the integer reference
    agreement: float  # top-1 agreement float vs integer on source_test


@dataclass(frozen=True)
class _Key:
    task: str
    model: str
    scheme: str
    data_path: str | None
    source_labels: tuple[int, ...] | None
    target_labels: tuple[int, ...] | None
    cache_root: str


def _key(task, model, scheme, data_path, cache_dir, source_labels, target_labels) -> _Key:
    return _Key(task, model, scheme, str(Path(data_path).resolve()) if data_path is not None else None,
                tuple(int(v) for v in source_labels) if source_labels is not None else None,
                tuple(int(v) for v in target_labels) if target_labels is not None else None,
                str(cache_root(cache_dir)))


@lru_cache(maxsize=8)
def _data(key: _Key) -> TaskData:
    return load_task(key.task, key.data_path, key.source_labels, key.target_labels)


@lru_cache(maxsize=8)
def _prepared(key: _Key) -> Prepared:
    data = _data(key)
    spec = get_model(key.model)
    _check_shapes(spec, data)
    pre = pretrain(spec, data, cache_dir=key.cache_root)
    qmodel = quantize(pre.network, data.source_train.x, key.scheme)
    x, y = data.source_test.x, data.source_test.y
    logits_f, logits_q = predict(pre.network, x), forward_int(qmodel, quantize_input(qmodel, x))
    return Prepared(data, pre, qmodel, pre.source_accuracy, float((logits_q.argmax(1) == y).mean()),
                    agreement(logits_f, logits_q))


@lru_cache(maxsize=16)
def _features(key: _Key, cut: str) -> tuple[Features, np.ndarray, np.ndarray]:
    """(target pool features, dequantized target test features, target test labels) at `cut`. The int8 (or int16)
    features come from the disk cache (models.feature_cache: memory-mapped, computed once per weights, quantization, cut
    and data), so a new process or a cleared in-process cache does not run the integer network again."""
    prep = _prepared(key)
    weights = _weights_hash(key)
    pool = cached_features(prep.qmodel, weights, prep.data, "target_pool", cut, key.cache_root)
    test = cached_features(prep.qmodel, weights, prep.data, "target_test", cut, key.cache_root)
    expected = get_model(key.model).layer(cut).bytes
    for split, features in (("target_pool", pool), ("target_test", test)):
        if features.q.shape[1] * features.q.dtype.itemsize != expected:  # a wrapped int16 would slip through
            raise ValueError(f"features of {key.model}.{cut} ({split}): {features.q.shape[1]} x {features.q.dtype}, "
                             f"but the zoo stores {expected} bytes per feature")
    return pool, dequantize(test), prep.data.target_test.y


@lru_cache(maxsize=8)
def _weights_hash(key: _Key) -> str:
    return weights_hash(_prepared(key).pretrained.network)


def _check_shapes(spec, data: TaskData) -> None:
    if tuple(spec.input_shape) != tuple(data.input_shape):
        raise ValueError(f"model {spec.name!r} takes input {tuple(spec.input_shape)}, "
                         f"task {data.task.name!r} has input {tuple(data.input_shape)}")
    if spec.classifier.units != data.source_classes:
        raise ValueError(f"model {spec.name!r} classifies {spec.classifier.units} source classes, "
                         f"task {data.task.name!r} has {data.source_classes}")


def prepare(task: str, model: str, scheme: str = "q7", data_path: str | Path | None = None,
            cache_dir: str | Path | None = None, source_labels=None, target_labels=None,
            cuts: tuple[str, ...] = (), progress: Callable[[str], None] | None = None) -> Prepared:
    """Warm the caches once (load data, pretrain or load the cached network, quantize, extract features at
    `cuts`), reporting through `progress`; later simulate() calls with the same arguments reuse all of it."""
    say = progress or (lambda message: None)
    get_scheme(scheme)
    spec = get_model(model)
    for cut in cuts:
        spec.check_cut(cut)
    key = _key(task, model, scheme, data_path, cache_dir, source_labels, target_labels)
    say(f"models: preparing {model} on task {task} ({scheme}): data, pretraining (cached on disk), quantization")
    prep = _prepared(key)
    say(f"models: data: {prep.data.provenance}")
    how = "loaded from cache" if prep.pretrained.loaded else f"trained in {prep.pretrained.seconds:.1f} s"
    say(f"models: {model} {how}; source top-1 float {prep.float_accuracy:.1%}, int8 {prep.int_accuracy:.1%} "
        f"(agreement {prep.agreement:.1%})")
    for cut in cuts:
        _features(key, cut)
    return prep


def cut_features(config: Configuration, data_path: str | Path | None = None, cache_dir: str | Path | None = None,
                 source_labels=None, target_labels=None) -> tuple[Prepared, Features, np.ndarray, np.ndarray]:
    """(prepared, target pool features, dequantized target test features, target test labels) at `config`'s cut,
    from the in-process caches (prepare() first to warm them with progress messages)."""
    key = _key(config.task, config.model, config.scheme, data_path, cache_dir, source_labels, target_labels)
    return (_prepared(key), *_features(key, config.cut))


def derive_seeds(seed: int, repeat: int) -> tuple[int, int]:
    """(draw seed, head seed) of one repeat: independent streams from numpy's SeedSequence([seed, repeat])."""
    a, b = np.random.SeedSequence([seed, repeat]).generate_state(2)
    return int(a), int(b)


def simulate(config: Configuration, repeats: int, seed: int, data_path: str | Path | None = None,
             cache_dir: str | Path | None = None, source_labels=None, target_labels=None) -> AccuracyStats:
    """Target-test accuracy of `config` over `repeats` simulated MicroTL runs (deterministic for a seed); stored or
    streaming training as `config.mode` says (models.head)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    get_scheme(config.scheme)
    spec = get_model(config.model)
    cut = spec.check_cut(config.cut)
    key = _key(config.task, config.model, config.scheme, data_path, cache_dir, source_labels, target_labels)
    data = _data(key)
    _check_shapes(spec, data)
    limit = max_balanced(data.target_pool.y, data.target_classes)
    if config.samples > limit:
        raise ValueError(f"samples = {config.samples} is more than the target pool of task {config.task!r} "
                         f"can give balanced; the maximum is {limit}")
    pool, x_test, y_test = _features(key, config.cut)
    y_pool = data.target_pool.y
    params = SGDParams.from_config(config)
    seeds = [derive_seeds(seed, r) for r in range(repeats)]
    # streaming: no validation split (config.val_samples is 0), the whole draw trains in collection order
    draws = [draw_samples(y_pool, config.samples, draw_seed, config.val_samples) for draw_seed, _ in seeds]
    results = train_heads([pool.subset(t) for t, _ in draws], [y_pool[t] for t, _ in draws],
                          [pool.subset(v) for _, v in draws], [y_pool[v] for _, v in draws],
                          config.hidden, data.target_classes, params, [head_seed for _, head_seed in seeds])
    if config.streaming:  # the weights are the firmware's bit for bit; evaluate in its order too (no near-tie flips)
        accuracies = [replay_accuracy(result.weights, x_test, y_test, pool.scale)[0] for result in results]
    else:
        accuracies = [accuracy(result.weights, x_test, y_test) for result in results]
    epochs = [result.epochs_run for result in results]
    return AccuracyStats(
        mean=float(np.mean(accuracies)),
        std=float(np.std(accuracies, ddof=1)) if repeats > 1 else 0.0,
        per_repeat=accuracies,
        epochs_mean=float(np.mean(epochs)),
        epochs_per_repeat=epochs,
        feature_bytes=cut.bytes,
        test_size=len(y_test),
    )


def clear_caches() -> None:
    """Forget the in-process caches (data, prepared models, features)."""
    _data.cache_clear()
    _prepared.cache_clear()
    _features.cache_clear()
    _weights_hash.cache_clear()
