"""Pretraining of the source network, cached on disk.

The cache key is a sha256 of everything that determines the weights (model spec, data content hash, training
hyper-parameters, seed, torch major.minor), so a cached file is never stale; files are written atomically.
Cache root: `cache_dir` argument, else $MICROTL_CACHE, else ~/.cache/microtl-dse; files go to
<root>/pretrained/<hash>.pt.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .cache import cache_root
from .data import TaskData
from .network import Network, build, predict, single_thread
from .zoo import ModelSpec


@dataclass(frozen=True)
class PretrainParams:
    """Adam on the source training split, one torch thread; a few seconds for digits."""

    epochs: int = 30
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0


@dataclass(eq=False)
class Pretrained:
    network: Network  # eval mode
    path: Path  # cache file
    loaded: bool  # True: read from the cache; False: trained now
    seconds: float  # wall time of this call (training or loading)
    source_accuracy: float  # float top-1 on source_test


def cache_key(spec: ModelSpec, data: TaskData, params: PretrainParams) -> str:
    torch_version = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    blob = json.dumps({"spec": dataclasses.asdict(spec), "data": data.content_hash,
                       "params": dataclasses.asdict(params), "torch": torch_version, "format": 1},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def pretrain(spec: ModelSpec, data: TaskData, params: PretrainParams = PretrainParams(),
             cache_dir: str | Path | None = None) -> Pretrained:
    """The source network trained on data.source_train; loaded from the cache when present."""
    if spec.classifier.units != data.source_classes:
        raise ValueError(f"model {spec.name!r} classifies {spec.classifier.units} source classes; "
                         f"task {data.task.name!r} has {data.source_classes}")
    start = time.perf_counter()
    path = cache_root(cache_dir) / "pretrained" / f"{cache_key(spec, data, params)}.pt"
    network = build(spec, params.seed)
    loaded = path.is_file()
    if loaded:
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    else:
        _train(network, data, params)
        _save_atomic({"state_dict": network.state_dict(), "params": dataclasses.asdict(params),
                      "model": spec.name, "data": data.content_hash}, path)
    network.eval()
    accuracy = float((predict(network, data.source_test.x).argmax(1) == data.source_test.y).mean())
    return Pretrained(network, path, loaded, time.perf_counter() - start, accuracy)


def _train(network: Network, data: TaskData, params: PretrainParams) -> None:
    x = torch.from_numpy(data.source_train.x)
    y = torch.from_numpy(data.source_train.y)
    generator = torch.Generator().manual_seed(params.seed)
    optimizer = torch.optim.Adam(network.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    network.train()
    with single_thread():
        for _ in range(params.epochs):
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y), params.batch):
                idx = order[start:start + params.batch]
                optimizer.zero_grad()
                F.cross_entropy(network(x[idx]), y[idx]).backward()
                optimizer.step()


def _save_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

