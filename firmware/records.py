"""Validation records on disk (the schema: vocabulary/validation_record.py): one JSON file per
(trial, board), written atomically; and the relative error of a measured figure against its prediction."""
from __future__ import annotations

import json
import os
from pathlib import Path

from vocabulary.validation_record import (
    ValidationRecord,
)


def write_record(record: ValidationRecord, folder: str | Path) -> Path:
    """Write `record` to folder/trial-<N>-<board>.json atomically (a temporary file, then os.replace)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / record.file_name
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(record.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_record(path: str | Path) -> ValidationRecord:
    return ValidationRecord.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def relative_error(measured: float | None, predicted: float | None) -> float | None:
    """(measured - predicted) / predicted, or None when either is missing or the prediction is 0."""
    if measured is None or predicted is None or predicted == 0:
        return None
    return (float(measured) - float(predicted)) / float(predicted)
