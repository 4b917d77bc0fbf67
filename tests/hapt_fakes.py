"""Small HAPT.pkl.gz files in the shipped layout, for the tests: a protocol-2 pickle assembled opcode by opcode
(as pandas 0.14 wrote it under Python 2: a dict user -> list of DataFrames, each a BlockManager with a float64
block (6, n) and an int64 block (2, n)), naming exactly the file's twelve globals. Written by hand because no
installed pandas can produce it and the real pickler would check the globals against the installed modules."""
from __future__ import annotations

import gzip
import struct

import numpy as np

PROTO, STOP, MARK = b"\x80\x02", b".", b"("
EMPTY_DICT, EMPTY_LIST, NONE, FALSE = b"}", b"]", b"N", b"I00\n"
TUPLE, TUPLE3, REDUCE, BUILD = b"t", b"\x87", b"R", b"b"
SETITEM, SETITEMS, APPEND, APPENDS = b"s", b"u", b"a", b"e"


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def integer(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def dtype(code: str, order: str) -> bytes:
    return (glob("numpy", "dtype") + MARK + text(code) + integer(0) + integer(1) + TUPLE + REDUCE
            + MARK + integer(3) + text(order) + NONE + NONE + NONE + integer(-1) + integer(-1)
            + integer(63 if code == "O8" else 0) + TUPLE + BUILD)


def array(values: np.ndarray) -> bytes:
    """numpy.core.multiarray._reconstruct(ndarray, (0,), b'b') then its state, as numpy 1.x under Python 2."""
    head = (glob("numpy.core.multiarray", "_reconstruct") + MARK + glob("numpy", "ndarray") + MARK + integer(0)
            + TUPLE + glob("_codecs", "encode") + MARK + text("b") + text("latin1") + TUPLE + REDUCE + TUPLE + REDUCE)
    shape = MARK + b"".join(integer(d) for d in values.shape) + TUPLE
    if values.dtype == object:
        kind, data = dtype("O8", "|"), EMPTY_LIST + MARK + b"".join(text(v) for v in values) + APPENDS
    else:
        kind = dtype(values.dtype.str[1:], "<")
        data = (glob("_codecs", "encode") + MARK + text(np.ascontiguousarray(values).tobytes().decode("latin1"))
                + text("latin1") + TUPLE + REDUCE)
    return head + MARK + integer(1) + shape + kind + FALSE + data + TUPLE + BUILD


def index(columns: list[str]) -> bytes:
    return (glob("pandas.core.indexes.base", "_new_Index") + MARK + glob("pandas.core.indexes.base", "Index")
            + EMPTY_DICT + MARK + text("data") + array(np.array(columns, dtype=object)) + text("name") + NONE
            + SETITEMS + TUPLE + REDUCE)


def range_index(n: int) -> bytes:
    return (glob("pandas.core.indexes.base", "_new_Index") + MARK + glob("pandas.core.indexes.range", "RangeIndex")
            + EMPTY_DICT + MARK + text("name") + NONE + text("start") + integer(0) + text("stop") + integer(n)
            + text("step") + integer(1) + SETITEMS + TUPLE + REDUCE)


def reconstructed(module: str, name: str) -> bytes:
    return glob("copy_reg", "_reconstructor") + MARK + glob(module, name) + glob("__builtin__", "object") + NONE \
        + TUPLE + REDUCE


def block_slice(start: int, stop: int) -> bytes:
    return glob("__builtin__", "slice") + MARK + integer(start) + integer(stop) + integer(1) + TUPLE + REDUCE


COLUMNS = ["acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z", "sequence", "label"]


def frame(signals: np.ndarray, labels: np.ndarray, columns: list[str] = COLUMNS) -> bytes:
    """One experiment: signals (n, 6) float64, labels (n,) int64."""
    n = len(labels)
    floats = np.ascontiguousarray(signals.T, dtype="<f8")
    ints = np.stack([np.arange(n), labels]).astype("<i8")
    axes = EMPTY_LIST + MARK + index(columns) + range_index(n) + APPENDS
    blocks = (EMPTY_LIST + MARK
              + EMPTY_DICT + MARK + text("values") + array(floats) + text("mgr_locs") + block_slice(0, 6) + SETITEMS
              + EMPTY_DICT + MARK + text("values") + array(ints) + text("mgr_locs") + block_slice(6, 8) + SETITEMS
              + APPENDS)
    legacy = EMPTY_DICT + text("0.14.1") + EMPTY_DICT + MARK + text("axes") + axes + text("blocks") + blocks \
        + SETITEMS + SETITEM
    manager = (reconstructed("pandas.core.internals.managers", "BlockManager")
               + MARK + EMPTY_LIST + EMPTY_LIST + EMPTY_LIST + legacy + TUPLE + BUILD)
    return (reconstructed("pandas.core.frame", "DataFrame") + EMPTY_DICT + MARK + text("_data") + manager
            + text("_typ") + text("dataframe") + SETITEMS + BUILD)


def pickle_bytes(experiments: dict[int, list[tuple[np.ndarray, np.ndarray]]], extra: bytes = b"") -> bytes:
    """The protocol-2 stream of {user: [frame, ...]}; `extra` is pushed and dropped before STOP (for refusals)."""
    body = b"".join(integer(user) + EMPTY_LIST + MARK + b"".join(frame(s, l) for s, l in frames) + APPENDS
                    + SETITEM for user, frames in experiments.items())
    pop = extra + b"0" if extra else b""
    return PROTO + EMPTY_DICT + body + pop + STOP


def recordings(users=(1, 2, 3, 4), seed: int = 0, runs_per_experiment: int = 6) -> dict:
    """Synthetic 50 Hz recordings: per user one experiment with runs of activities 1-6 (each a sinusoid whose
    frequency and offset depend on the activity), unlabelled gaps and a postural transition (7)."""
    rng = np.random.default_rng(seed)
    out = {}
    for user in users:
        signals, labels = [], []
        for k in range(runs_per_experiment):
            activity = k % 6 + 1
            for label, length in ((-1, 40), (activity, 128 + 64 * (1 + (user + k) % 3) + 10), (7, 30)):
                t = np.arange(length) / 50.0
                base = np.sin(2 * np.pi * (0.5 + activity) * t)[:, None] * (0.1 * activity)
                offset = np.array([1.0, 0.1 * activity, -0.2, 0.0, 0.0, 0.0])
                signals.append(base + offset + 0.01 * rng.standard_normal((length, 6)))
                labels.append(np.full(length, label))
        out[user] = [(np.concatenate(signals), np.concatenate(labels).astype(np.int64))]
    return out


def write(path, experiments: dict, extra: bytes = b"") -> bytes:
    raw = gzip.compress(pickle_bytes(experiments, extra))
    path.write_bytes(raw)
    return raw
