"""CIFAR-10, python version, as published at https://www.cs.toronto.edu/~kriz/cifar.html.

Accepted locations (task.data in the study file, or MICROTL_CIFAR10 when there is none):
- `cifar-10-python.tar.gz` (any tar, read member by member in memory; nothing is extracted to disk);
- the extracted `cifar-10-batches-py/` directory;
- a directory that holds either of them.

Each batch (data_batch_1..5 = the official training part, test_batch = the official test part) is a pickled dict
with b"data" (N, 3072) uint8 -- each row is 1024 red, then 1024 green, then 1024 blue values of a row-major 32x32
image -- and b"labels" (N ints 0-9: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck).
Images are returned as float32 (N, 32, 32, 3) channels-last, value / 255. The pickles are read with an unpickler
that only admits the numpy array types they contain.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from . import DataError
from . import locate, reason

URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
ENV_VAR = "MICROTL_CIFAR10"
DIRNAME = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
EXPECTED = f"the CIFAR-10 python version ({ARCHIVE} or its extracted {DIRNAME}/ directory)"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the pickle")
        if module.startswith("numpy"):
            if name == "_reconstruct":
                return np.zeros(0).__reduce__()[0]  # numpy's own _reconstruct, whatever its module
            if name == "scalar":
                return np.uint8(0).__reduce__()[0]  # numpy's scalar constructor
        return super().find_class(module, name)


def _fail(where: str, problem: str) -> DataError:
    return DataError(f"CIFAR-10 data {where}: {problem}; expected {EXPECTED}, published at {URL}")


def load(data_path=None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)): the official 50,000 / 10,000 partition (in the test files' sizes)."""
    path = locate(data_path, ENV_VAR, EXPECTED, URL)
    if path.is_dir():
        if (path / DIRNAME).is_dir():
            path = path / DIRNAME
        elif (path / ARCHIVE).is_file():
            path = path / ARCHIVE
    if path.is_dir():
        raw = {name: _read_file(path / name) for name in TRAIN_BATCHES + (TEST_BATCH,)}
    elif path.is_file():
        raw = _read_tar(path)
    else:
        raise _fail(str(path), "not found")
    train = [_decode(f"{path} member {name}", raw[name]) for name in TRAIN_BATCHES]
    x_test, y_test = _decode(f"{path} member {TEST_BATCH}", raw[TEST_BATCH])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return (x_train, y_train), (x_test, y_test)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise _fail(str(path), "not found") from None
    except OSError as exc:
        raise _fail(str(path), f"could not be read ({reason(exc)})") from None


def _read_tar(path: Path) -> dict[str, bytes]:
    wanted = set(TRAIN_BATCHES + (TEST_BATCH,))
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:  # streams: no index, no extraction
                base = member.name.rstrip("/").rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and base not in found:
                    handle = tar.extractfile(member)
                    found[base] = handle.read() if handle is not None else b""
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise _fail(str(path), f"could not be read as a tar archive ({reason(exc)})") from None
    missing = [name for name in TRAIN_BATCHES + (TEST_BATCH,) if name not in found]
    if missing:
        raise _fail(str(path), f"has no member {DIRNAME}/{missing[0]}")
    return found


def _decode(where: str, blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _Unpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:  # truncated or foreign pickles fail in many ways; all mean "not a CIFAR batch"
        raise _fail(where, f"is not a readable pickle ({reason(exc)})") from None
    if not isinstance(batch, dict):
        raise _fail(where, f"holds a {type(batch).__name__}, not a dict")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise _fail(where, "has no 'data' or no 'labels' entry")
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(data) == 0:
        raise _fail(where, f"data has shape {data.shape} and dtype {data.dtype}, not (N, 3072) uint8")
    try:
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError):
        raise _fail(where, "labels are not a list of integers") from None
    if labels.shape != (len(data),):
        raise _fail(where, f"has {len(data)} images but labels of shape {labels.shape}")
    if labels.min() < 0 or labels.max() > 9:
        raise _fail(where, f"labels range {labels.min()}..{labels.max()}, not 0..9")
    # CHW-planar rows -> (N, 3, 32, 32) -> channels-last (N, 32, 32, 3)
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(x), labels
