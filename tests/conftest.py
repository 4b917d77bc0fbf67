"""Shared test helpers."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest


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


@pytest.fixture(autouse=True, scope="session")
def _user_calibration_folder(tmp_path_factory):
    """Tests never read nor write the real user's calibration folder (cost_models.user_data): an empty one of
    their own, so the cost models see the shipped calibrations alone unless a test adds to it."""
    previous = os.environ.get("MICROTL_CALIBRATION_DIR")
    os.environ["MICROTL_CALIBRATION_DIR"] = str(tmp_path_factory.mktemp("user-calibration"))
    yield
    if previous is None:
        os.environ.pop("MICROTL_CALIBRATION_DIR", None)
    else:
        os.environ["MICROTL_CALIBRATION_DIR"] = previous


@pytest.fixture(autouse=True)
def _fresh_user_calibration_folder(tmp_path_factory, monkeypatch):
    """Each test its own (empty) user calibration folder: one test's imports and refits never reach another."""
    monkeypatch.setenv("MICROTL_CALIBRATION_DIR", str(tmp_path_factory.mktemp("user-calibration")))
