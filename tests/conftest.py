"""Shared test helpers."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def model_cache_at(path: Path):
    """Point MICROTL_CACHE (pretrained networks, features) at `path` for the duration, then restore it."""
    old = os.environ.get("MICROTL_CACHE")
    os.environ["MICROTL_CACHE"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("MICROTL_CACHE", None)
        else:
            os.environ["MICROTL_CACHE"] = old
