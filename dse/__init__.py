"""The study layer of microtl-dse: study files, the Optuna multi-objective search, reports and the `dse` command.

Public API (re-exported here, loaded on first use: `import dse.cli` stays light): load a study file into a
StudySpec, run or resume it, and write its reports.
"""
from importlib import import_module

from dse.errors import StudyFileError, StudyFolderError, UserError


# the study layer's API -> the module defining it, imported on first use (PEP 562): imported here, the package would
# load the cost models, Optuna and matplotlib at every start of `dse`
_API = {"StudySpec": "dse.study.file", "load_study_file": "dse.study.file", "parse_study": "dse.study.file",
        "run_study": "dse.search.optimize", "write_reports": "dse.reports.report"}


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'dse' has no attribute {name!r}")
    return getattr(import_module(_API[name]), name)


__all__ = ["StudyFileError", "StudyFolderError", "StudySpec", "UserError", "load_study_file", "parse_study",
           "run_study", "write_reports"]
