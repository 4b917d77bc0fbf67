"""`dse show DIR`: the feasible Pareto picks of a study folder as a table (or JSON). Reads the storage only: no
plotting library is loaded."""
from __future__ import annotations

import json
import textwrap

from dse.reports.modes import has_modes
from dse.reports.tables import terminal_width, text_table
from dse.reports.trials import pick_records, pick_rows, picks, trial_table
from dse.study.folder import StudyFolder


def cmd_show(args) -> int:
    study, spec = StudyFolder(args.folder).load()
    table = trial_table(study, spec)
    chosen = picks(table, spec, unique=True)
    complete = int((table["state"] == "COMPLETE").sum()) if len(table) else 0
    if args.json:
        print(json.dumps({"study": spec.name, "trials": len(table), "complete": complete,
                          "objectives": {o.name: o.direction for o in spec.objectives},
                          "picks": pick_records(chosen)}, indent=2))
        return 0
    width = terminal_width()
    head = (f"study {spec.name}: {len(table)} trials, {complete} complete; {len(chosen)} feasible Pareto picks "
            f"({', '.join(f'{o.direction} {o.name}' for o in spec.objectives)}; repeated configurations once)")
    print("\n".join(textwrap.wrap(head, width)) if width else head)
    if len(chosen):
        headers, rows = pick_rows(chosen, short=width is not None, modes=has_modes(table, spec))
        print(text_table(headers, rows, width=width, drop_first=("pick", "batch", "lr", "epochs")))
    return 0
