"""Features at a cut point, cached on disk and shared by trials, studies and processes.

A feature file holds the integer output at `cut` (int8, or int16 for a layer whose out_bits is 16) of the quantized
network for one split of one task. Its name is a sha256 over everything the numbers depend on:
- the pretrained float weights (sha256 of the state dict),
- the quantized model: scheme name and every quantization parameter (frac bits, shifts, int8 weights and biases,
  zero points - whatever the scheme's QuantizedModel holds),
- the cut point,
- the data set content hash (TaskData.content_hash) and the split name,
- the source of the extraction code (models.features, models.intref, models.quantize) and a format number,
so a cached file is never stale: any change of these gives another file. Files go to
<cache root>/features/<key>.npy (the cut's dtype, loaded memory-mapped, read-only) with a JSON sidecar <key>.json
holding frac_bits / zero_point, the shape, the sha256 of the array bytes and the key's inputs (for humans). Both are
written atomically (temporary file + os.replace), the .npy first: a reader that finds no valid sidecar, or a file
whose dtype, shape or checksum does not match, recomputes and rewrites both (a corrupted or half-copied cache heals
itself).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from . import features as _features_module
from . import intref, quantize as _quantize_module
from .data import TaskData
from .features import Features, extract
from .pretrain import cache_root
from .quantize import QuantizedModel

FORMAT = 2  # 2: int16 cuts stored as int16 (format 1 wrapped them to int8)
SPLITS = ("source_train", "source_test", "target_pool", "target_test")


def _code_hash() -> str:
    h = hashlib.sha256()
    for module in (_features_module, intref, _quantize_module):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


_CODE_HASH = _code_hash()


def _update(h, value) -> None:
    """Feed a (nested) value into a hash, unambiguously: arrays by dtype, shape and bytes."""
    if isinstance(value, np.ndarray):
        h.update(f"nd{value.dtype.str}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(f"dc{type(value).__name__}(".encode())
        for f in dataclasses.fields(value):
            h.update(f"{f.name}=".encode())
            _update(h, getattr(value, f.name))
        h.update(b")")
    elif isinstance(value, (list, tuple)):
        h.update(f"seq{len(value)}[".encode())
        for item in value:
            _update(h, item)
        h.update(b"]")
    elif isinstance(value, dict):
        h.update(f"map{len(value)}{{".encode())
        for k in sorted(value):
            _update(h, k)
            _update(h, value[k])
        h.update(b"}")
    elif value is None or isinstance(value, (bool, int, float, str, np.generic)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif hasattr(value, "detach"):  # torch tensor
        _update(h, value.detach().cpu().contiguous().numpy())
    else:
        raise TypeError(f"feature cache key: cannot hash a {type(value).__name__}")


def weights_hash(network) -> str:
    """sha256 of a float network's state dict (names, dtypes, shapes, values)."""
    h = hashlib.sha256()
    _update(h, dict(network.state_dict()))
    return h.hexdigest()


def qmodel_hash(qmodel: QuantizedModel) -> str:
    """sha256 of a quantized model: scheme, input frac bits and every layer's parameters."""
    h = hashlib.sha256()
    _update(h, qmodel)
    return h.hexdigest()


def key_inputs(weights: str, qmodel: QuantizedModel, cut: str, data_hash: str, split: str) -> dict:
    """What a feature file depends on (also written to the sidecar)."""
    qmodel.layer(cut)  # unknown cut: ValueError
    return {"format": FORMAT, "weights": weights, "model": qmodel.model, "scheme": qmodel.scheme,
            "quantized": qmodel_hash(qmodel), "cut": cut, "data": data_hash, "split": split, "code": _CODE_HASH}


def cache_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def paths(root: Path, key: str) -> tuple[Path, Path]:
    base = Path(root) / "features"
    return base / f"{key}.npy", base / f"{key}.json"


def cached_features(qmodel: QuantizedModel, weights: str, data: TaskData, split: str, cut: str,
                    cache_dir: str | Path | None = None) -> Features:
    """Features of `data.<split>` at `cut`: loaded memory-mapped from the disk cache, else extracted and stored.
    `weights` is weights_hash() of the float network `qmodel` was quantized from."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    inputs = key_inputs(weights, qmodel, cut, data.content_hash, split)
    npy, meta = paths(cache_root(cache_dir), cache_key(inputs))
    dtype = feature_dtype(qmodel, cut)
    loaded = _load(npy, meta, dtype)
    if loaded is not None:
        return loaded
    features = extract(qmodel, getattr(data, split).x, cut)
    if features.q.size and features.q.dtype.itemsize > dtype.itemsize:
        raise ValueError(f"feature cache: {qmodel.model}.{cut} gave {features.q.dtype} features, expected {dtype}")
    q = np.ascontiguousarray(features.q, dtype=dtype)
    _write_atomic(npy, lambda handle: np.save(handle, q, allow_pickle=False))
    sidecar = {"frac_bits": int(features.frac_bits), "zero_point": int(features.zero_point),
               "shape": list(q.shape), "sha256": hashlib.sha256(q.tobytes()).hexdigest(), "key": inputs}
    _write_atomic(meta, lambda handle: handle.write(json.dumps(sidecar, indent=1, sort_keys=True).encode()))
    loaded = _load(npy, meta, dtype)  # serve the memory-mapped file (an empty split cannot be mapped: keep it in RAM)
    return loaded if loaded is not None else Features(q, features.frac_bits, features.zero_point)


def feature_dtype(qmodel: QuantizedModel, cut: str) -> np.dtype:
    """Stored element type at `cut`: int8, or little-endian int16 for a layer with out_bits 16 (2 B/element, as
    the zoo's LayerSpec.bytes and the firmware's store count them)."""
    bits = getattr(qmodel.layer(cut), "out_bits", 8)
    if bits not in (8, 16):
        raise ValueError(f"feature cache: {qmodel.model}.{cut} outputs int{bits}; features are int8 or int16")
    return np.dtype(np.int8) if bits == 8 else np.dtype("<i2")


def _load(npy: Path, meta: Path, dtype: np.dtype) -> Features | None:
    """The cached features, memory-mapped, or None when absent or not valid (then the caller rebuilds)."""
    try:
        sidecar = json.loads(meta.read_text())
        q = np.load(npy, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):  # missing, truncated, not an .npy / JSON
        return None
    try:
        valid = (q.dtype == dtype and q.ndim == 2 and list(q.shape) == sidecar["shape"]
                 and hashlib.sha256(memoryview(q).cast("B")).hexdigest() == sidecar["sha256"])
        if not valid:
            return None
        return Features(q, int(sidecar["frac_bits"]), int(sidecar["zero_point"]))
    except (KeyError, TypeError, ValueError):
        return None


def _write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
