"""`dse validate DIR --trial N | --picks K --board BOARD`: build and run trials' firmware on a board and compare
what it measured with what the study predicted (dse/commands/validation.py; firmware/validate.py)."""
from __future__ import annotations

import json
from pathlib import Path

from dse.commands.validation import (
    VALIDATIONS_DIR,
    WORK_DIR,
    get_board,
    load_trial,
    pick_numbers,
    validate_trial,
    validation_table,
)
from dse.console import say
from dse.errors import UserError
from dse.paths import check_output_folder
from dse.reports.tables import terminal_width
from dse.study.folder import StudyFolder


def cmd_validate(args) -> int:
    if args.ppk2 is not None and args.board != "nrf52840dk":
        raise UserError(f"--ppk2 measures energy on the nrf52840dk board, not on {args.board}")
    board = get_board(args.board, **({"ppk2": args.ppk2} if args.ppk2 is not None else {}))
    loaded = StudyFolder(args.folder).load()
    _check_validations_folder(args.folder)
    numbers = [args.trial] if args.trial is not None else pick_numbers(args.folder, args.picks, loaded)
    infos = [load_trial(args.folder, n, loaded) for n in numbers]  # every trial checked before any runs
    records = []
    for info in infos:
        records.append(validate_trial(args.folder, info.number, board, timeout_s=args.timeout, loaded=loaded,
                                      info=info))
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
    else:
        print(validation_table(records, terminal_width()))
    failed = [r for r in records if not r.ok]
    for r in failed:
        reason = r.reason[len(r.board) + 2:] if r.reason.startswith(f"{r.board}: ") else r.reason
        say(f"dse: error: trial {r.trial} on {r.board}: {reason}")
    return 1 if failed else 0


def _check_validations_folder(folder) -> None:
    """Records and builds go to DIR/validations/ and DIR/validations/work/: folders, writable, before any build."""
    check_output_folder(Path(folder) / VALIDATIONS_DIR, "validations folder")
    check_output_folder(Path(folder) / VALIDATIONS_DIR / WORK_DIR, "validations work folder")
