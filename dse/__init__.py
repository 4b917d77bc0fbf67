"""The study layer of microtl-dse: study files, the Optuna multi-objective search, reports and the `dse` command.

Public API (re-exported here, loaded on first use: `import dse.cli` stays light): load a study file into a
StudySpec, run or resume it, and write its reports.
"""
from dse.errors import StudyFileError, StudyFolderError, UserError


def __getattr__(name: str):
    """The study layer's API, imported on first use (PEP 562): with it the package would load the cost models, Optuna
    or matplotlib at every start of `dse`."""
    if name in ("StudySpec", "load_study_file", "parse_study"):
        from dse.study import file as module
    elif name == "run_study":
        from dse.search import optimize as module
    elif name == "write_reports":
        from dse.reports import report as module
    else:
        raise AttributeError(f"module 'dse' has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["StudyFileError", "StudyFolderError", "StudySpec", "UserError", "load_study_file", "parse_study",
           "run_study", "write_reports"]
