"""Cost side of microtl-dse: board descriptions, memory/latency/energy predictors, calibration from records.

Public API, re-exported here. Imports `vocabulary` and only the pure-Python parts of `models` (zoo, tasks, prng,
kernels, arena: tests/test_architecture.py);
scipy is loaded on the first calibration fit.
"""
from .board import BoardSpec, BoardSpecError, list_boards, load_board
from .calibration import (
    Calibration,
    CalibrationError,
    FitSettings,
    clear_cache,
    fit_calibration,
    load_calibration,
    read_calibration,
    report,
    save_calibration,
)
from .predict import predict
from .pricing import PhaseCost, Prediction, price
from .radio import BleUpload, ble_upload
from .records import Record, RecordError, load_record_dir, load_records
from .workload import Workload, build_workload, workload_from_config

__all__ = [
    "BleUpload", "BoardSpec", "BoardSpecError", "Calibration", "CalibrationError", "FitSettings", "PhaseCost",
    "Prediction", "Record", "RecordError", "Workload", "ble_upload", "build_workload", "clear_cache",
    "fit_calibration", "list_boards", "load_board", "load_calibration", "load_record_dir", "load_records",
    "predict", "price", "read_calibration", "report", "save_calibration", "workload_from_config",
]  # fmt: skip
