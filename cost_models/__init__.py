"""Cost side of microtl-dse: board descriptions, memory/latency/energy predictors, calibration from records.

Public API, re-exported here. Imports `vocabulary` and only the pure-Python parts of `models` (zoo, tasks, prng,
kernels, arena: tests/test_architecture.py);
scipy is loaded on the first calibration fit.
"""
from cost_models.board import BoardSpec, BoardSpecError, list_boards, load_board
from cost_models.paper.calibration import (
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
from cost_models.paper.price import price
from cost_models.paper.records import Record, RecordError, load_record_dir, load_records
from cost_models.predict import predict
from cost_models.pricing import PhaseCost, Prediction
from cost_models.radio import BleUpload, ble_upload
from cost_models.workload import Workload, build_workload, workload_from_config

__all__ = [
    "BleUpload", "BoardSpec", "BoardSpecError", "Calibration", "CalibrationError", "FitSettings", "PhaseCost",
    "Prediction", "Record", "RecordError", "Workload", "ble_upload", "build_workload", "clear_cache",
    "fit_calibration", "list_boards", "load_board", "load_calibration", "load_record_dir", "load_records",
    "predict", "price", "read_calibration", "report", "save_calibration", "workload_from_config",
]  # fmt: skip
