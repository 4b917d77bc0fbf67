"""The study layer of microtl-dse: study files, the Optuna multi-objective search, reports and the `dse` command.

Public API (re-exported here): load a study file into a StudySpec, run or resume it, and write its reports.
"""
from .errors import StudyFileError, StudyFolderError, UserError
from .studyfile import StudySpec, load_study_file, parse_study


def run_study(*args, **kwargs):
    """See dse.search.run_study (imported lazily: it pulls in Optuna)."""
    from .search import run_study as run

    return run(*args, **kwargs)


def write_reports(*args, **kwargs):
    """See dse.report.write_reports (imported lazily: it pulls in pandas and matplotlib)."""
    from .report import write_reports as write

    return write(*args, **kwargs)


__all__ = ["StudyFileError", "StudyFolderError", "StudySpec", "UserError", "load_study_file", "parse_study",
           "run_study", "write_reports"]
