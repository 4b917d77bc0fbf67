"""`dse report DIR`: rebuild a study's reports (trials.csv, pareto.csv, plots, summary.md) from its storage alone."""
from __future__ import annotations

import json
from pathlib import Path

from dse.paths import check_output_folder
from dse.reports.report import write_reports
from dse.study.folder import StudyFolder
from dse.study.lock import folder_lock


def cmd_report(args) -> int:
    try:
        is_folder = Path(args.folder).is_dir()
    except OSError:  # a name the file system refuses (too long, ...)
        is_folder = False
    if not is_folder:
        StudyFolder(args.folder).load()  # its one-line error, without creating the folder for a lock
    with folder_lock(args.folder, "dse report"):
        study, spec = StudyFolder(args.folder).load()
        check_output_folder(args.folder, "study folder")  # the reports are written into it
        written = write_reports(study, spec, args.folder)
    if args.json:
        print(json.dumps({"study": spec.name, "folder": str(args.folder), "written": [str(p) for p in written]},
                         indent=2))
    else:
        for path in written:
            print(path)
    return 0
