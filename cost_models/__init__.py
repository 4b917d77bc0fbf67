"""Cost side of microtl-dse: board descriptions, memory/latency/energy predictors, calibration from records.

Public API, re-exported here. Imports only the pure-Python parts of `models` (configuration, zoo, tasks);
scipy is loaded on the first calibration fit.
"""
from importlib import import_module

# name -> submodule; loaded on first use (PEP 562): importing one light submodule (cost_models.deployment from a
# study file's check, cost_models.arena from `dse model`) must not load the calibration fits and their data at every
# start of `dse` - a deferral on purpose, for start-up time
_EXPORTS = {
    "Board": "board", "BoardError": "board", "list_boards": "board", "load_board": "board",
    "Calibration": "calibration", "CalibrationError": "calibration", "FitSettings": "calibration",
    "clear_cache": "calibration", "fit_calibration": "calibration", "load_calibration": "calibration",
    "read_calibration": "calibration", "report": "calibration", "save_calibration": "calibration",
    "PhaseCost": "predict", "Prediction": "predict", "predict": "predict", "price": "predict",
    "BleUpload": "radio", "ble_upload": "radio",
    "Record": "records", "RecordError": "records", "load_record_dir": "records", "load_records": "records",
    "Workload": "workload", "build_workload": "workload", "workload_from_config": "workload",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BleUpload", "Board", "BoardError", "Calibration", "CalibrationError", "FitSettings", "PhaseCost",
    "Prediction", "Record", "RecordError", "Workload", "ble_upload", "build_workload", "clear_cache",
    "fit_calibration", "list_boards", "load_board", "load_calibration", "load_record_dir", "load_records",
    "predict", "price", "read_calibration", "report", "save_calibration", "workload_from_config",
]  # fmt: skip
