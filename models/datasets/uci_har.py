"""UCI HAR (Human Activity Recognition Using Smartphones), as published at https://archive.ics.uci.edu/dataset/240.

Accepted locations (task.data in the study file, or MICROTL_UCI_HAR when there is none):
- the extracted `UCI HAR Dataset/` directory;
- `UCI HAR Dataset.zip`, read member by member in memory (nothing is extracted to disk); the archive the UCI page
  serves, which holds `UCI HAR Dataset.zip` inside it, is accepted too;
- a directory that holds either of them.

Read are the raw windows in train/ (the official training part, subjects 70%) and test/ (the official test part):
`Inertial Signals/{body_acc,body_gyro,total_acc}_{x,y,z}_<part>.txt`, one 128-sample window per row,
whitespace-separated, and `y_<part>.txt`, one label per row, 1-6 = walking, walking upstairs, walking downstairs,
sitting, standing, laying. The nine signals are stacked to float32 (N, 128, 9) channels-last in the order above.

Normalisation (the paper's "min-max normalised per axis"): each of the 9 channels is scaled to [0, 1] with the
minimum and maximum of that channel over the official training part only, so that nothing of the test part leaks
into the scaling; the same scaling is applied to the test part, whose values are then clipped to [0, 1].
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from . import DataError
from . import locate, reason

URL = "https://archive.ics.uci.edu/dataset/240"
ENV_VAR = "MICROTL_UCI_HAR"
DIRNAME = "UCI HAR Dataset"
ARCHIVE = "UCI HAR Dataset.zip"
EXPECTED = f"UCI HAR ({ARCHIVE} or its extracted {DIRNAME}/ directory)"
SIGNALS = tuple(f"{kind}_{axis}" for kind in ("body_acc", "body_gyro", "total_acc") for axis in "xyz")
STEPS = 128
CLASSES = ("walking", "walking upstairs", "walking downstairs", "sitting", "standing", "laying")  # labels 1-6


def _fail(where: str, problem: str) -> DataError:
    return DataError(f"UCI HAR data {where}: {problem}; expected {EXPECTED}, published at {URL}")


def members(part: str) -> list[str]:
    """Paths inside `UCI HAR Dataset/` of the files read for `part` ("train" or "test"): 9 signals, then labels."""
    return [f"{part}/Inertial Signals/{s}_{part}.txt" for s in SIGNALS] + [f"{part}/y_{part}.txt"]


def load(data_path=None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)), x (N, 128, 9) float32 in [0, 1], y int64 labels 1-6."""
    path = locate(data_path, ENV_VAR, EXPECTED, URL)
    if path.is_dir() and not (path / "train").is_dir():
        if (path / DIRNAME).is_dir():
            path = path / DIRNAME
        elif (path / ARCHIVE).is_file():
            path = path / ARCHIVE
    if path.is_dir():
        read = lambda name: _read_file(path / name)  # noqa: E731
        parts = {part: _part(part, read, lambda name: str(path / name)) for part in ("train", "test")}
    elif path.is_file():
        texts = _read_zip(path)
        parts = {part: _part(part, texts.__getitem__, lambda name: f"{path} member {DIRNAME}/{name}")
                 for part in ("train", "test")}
    else:
        raise _fail(str(path), "not found")
    (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
    lo = x_train.min(axis=(0, 1))
    span = x_train.max(axis=(0, 1)) - lo
    span[span == 0] = 1.0
    x_train = ((x_train - lo) / span).astype(np.float32)
    x_test = np.clip((x_test - lo) / span, 0.0, 1.0).astype(np.float32)
    return (x_train, y_train), (x_test, y_test)


def _read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise _fail(str(path), "not found") from None
    except OSError as exc:
        raise _fail(str(path), f"could not be read ({reason(exc)})") from None


def _read_zip(path: Path) -> dict[str, str]:
    wanted = members("train") + members("test")
    try:
        archive = zipfile.ZipFile(path)
        names = [n for n in archive.namelist() if not n.startswith("__MACOSX/")]
        if not any(n.endswith(wanted[0]) for n in names):  # the UCI download: a zip around the zip
            inner = [n for n in names if n.rsplit("/", 1)[-1] == ARCHIVE]
            if inner:
                archive = zipfile.ZipFile(io.BytesIO(archive.read(inner[0])))
                names = [n for n in archive.namelist() if not n.startswith("__MACOSX/")]
        anchor = next((n for n in names if n.endswith(wanted[0])), None)
        if anchor is None:
            raise _fail(str(path), f"has no member {DIRNAME}/{wanted[0]}")
        prefix = anchor[: -len(wanted[0])]
        texts = {}
        for name in wanted:
            try:
                texts[name] = archive.read(prefix + name).decode("ascii", errors="replace")
            except KeyError:
                raise _fail(str(path), f"has no member {DIRNAME}/{name}") from None
        return texts
    except DataError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, RuntimeError) as exc:
        raise _fail(str(path), f"could not be read as a zip archive ({reason(exc)})") from None


def _part(part: str, read, where) -> tuple[np.ndarray, np.ndarray]:
    names = members(part)
    signals = []
    for name in names[:-1]:
        signals.append(_table(read(name), where(name)))
    y_name = names[-1]
    labels = _table(read(y_name), where(y_name), width=1)[:, 0]
    n = len(labels)
    for name, signal in zip(names, signals):
        if len(signal) != n:
            raise _fail(where(name), f"has {len(signal)} rows but {y_name} has {n}; expected the same count")
    if not np.all(labels == np.round(labels)) or labels.min() < 1 or labels.max() > 6:
        raise _fail(where(y_name), "labels are not integers 1-6")
    x = np.stack(signals, axis=-1).astype(np.float32)  # (N, 128, 9)
    return x, labels.astype(np.int64)


def _table(text: str, where: str, width: int = STEPS) -> np.ndarray:
    rows = [line for line in text.splitlines() if line.strip()]
    if not rows:
        raise _fail(where, "is empty")
    try:
        values = np.array(text.split(), dtype=np.float64)
    except ValueError as exc:
        raise _fail(where, f"holds a non-number ({reason(exc)})") from None
    if values.size != len(rows) * width:
        raise _fail(where, f"has {values.size} values in {len(rows)} rows; expected {width} per row")
    if not np.isfinite(values).all():
        raise _fail(where, "holds NaN or infinite values")
    return values.reshape(len(rows), width)
