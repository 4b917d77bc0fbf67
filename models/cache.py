"""Where the models' on-disk caches live (pretrained networks, features, data sets converted once): the `cache_dir`
argument, else $MICROTL_CACHE, else ~/.cache/microtl-dse. A module of its own so that the data readers
(models.datasets) and pretraining both use it without importing each other."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("MICROTL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "microtl-dse"
