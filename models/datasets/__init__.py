"""Readers for the standard distribution files of the paper's data sets (no download, ever).

Each reader returns the official (train, test) partition as ((x_train, y_train), (x_test, y_test)) with x float32
channels-last in [0, 1] and y int64 in the data set's own labels; models.data turns that into a TaskData.
"""
from __future__ import annotations

import os
from pathlib import Path



class DataError(ValueError):
    """A data file is missing, unreadable or malformed. The message is one line naming the file."""


def locate(data_path, env_var: str, expected: str, url: str) -> Path:
    """`data_path`, or the path in environment variable `env_var` when data_path is None."""
    if data_path is not None:
        return Path(data_path)
    value = os.environ.get(env_var, "").strip()
    if not value:
        raise DataError(f"no data file given: set task.data in the study file or the environment variable "
                        f"{env_var} to {expected} (published at {url}; it is never downloaded for you)")
    return Path(value).expanduser()


def reason(exc: BaseException) -> str:
    """First line of an exception's message, or its type name."""
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__
