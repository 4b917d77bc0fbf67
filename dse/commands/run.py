"""`dse run STUDY.toml`: run or resume a study, then write its reports."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dse.console import say
from dse.errors import EXIT_INTERRUPTED
from dse.reports.report import write_reports
from dse.reports.trials import picks, trial_table
from dse.search.optimize import run_study
from dse.study.file import load_study_file
from dse.study.lock import folder_lock
from dse.study.storage import check_url


def cmd_run(args) -> int:
    spec = load_study_file(args.study)
    out = Path(args.out) if args.out else Path("runs") / spec.name
    if args.storage:
        check_url(args.storage)
        spec = replace(spec, storage=args.storage)
    with folder_lock(out, "dse run"):  # one writer per study folder (dse/study/lock.py)
        return _run_locked(args, spec, out)


def _run_locked(args, spec, out: Path) -> int:
    result = run_study(spec, out, args.trials, progress=not args.quiet, workers=args.workers)
    for note in result.notes:
        say(f"dse: {note}")
    table = trial_table(result.study, spec)
    if result.interrupted:
        stopped = int((table["state"] != "WAITING").sum()) if len(table) else 0  # queued trials are not run yet
        say(f"dse: interrupted after {stopped} of {result.target} trials; the storage is consistent: run the "
            f"same command to resume (`dse report {out}` redoes the reports)")
        return EXIT_INTERRUPTED
    write_reports(result.study, spec, out)
    complete = int((table["state"] == "COMPLETE").sum()) if len(table) else 0
    feasible = int((table["feasible"] == True).sum()) if len(table) else 0  # noqa: E712
    failed = int((table["state"] == "FAIL").sum()) if len(table) else 0
    say(f"dse: {spec.name}: {len(table)} trials ({result.ran} run now): {complete} complete, {feasible} feasible, "
        f"{failed} failed; {len(picks(table, spec))} Pareto picks; see {out / 'summary.md'}")
    return 0
