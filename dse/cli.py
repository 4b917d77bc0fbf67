"""The `dse` command: run a study, redo its reports, show its picks, inspect the zoo, price one configuration,
validate picks on a board.

User errors print one line `dse: error: ...` and exit 2. The arguments of every command are dse/parser.py's; the
command table below (`command`) loads the module of the command that runs, and only that one.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from importlib import import_module

from dse.console import say
from dse.errors import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE, UserError
from dse.parser import build_parser
from dse.redact import mask
from dse.search.threads import limit_threads


# command -> (module, function). Each command's module imports what it needs at module level (Optuna, pandas,
# matplotlib, torch, scipy, the firmware's build and boards); `command` loads only the one that runs, so
# `dse --help`, `dse COMMAND --help` and a usage error load none of them (issue 15: `dse --help` under 0.3 s).
COMMANDS = {
    "run": ("dse.commands.run", "cmd_run"),
    "report": ("dse.commands.report", "cmd_report"),
    "show": ("dse.commands.show", "cmd_show"),
    "model": ("dse.commands.model", "cmd_model"),
    "predict": ("dse.commands.model", "cmd_predict"),
    "validate": ("dse.commands.validate", "cmd_validate"),
    "calibrate": ("dse.commands.calibrate", "cmd_calibrate"),
    "rescore": ("dse.commands.rescore", "cmd_rescore"),
    "worker": ("dse.search.workers", "cmd_worker"),
    "paper": ("dse.commands.paper", "cmd_paper"),
}


def command(name: str) -> Callable[..., int]:
    """The function that runs command `name`: the one place dse loads a command's module, for start-up time."""
    try:
        module, function = COMMANDS[name]
    except KeyError:
        raise ValueError(f"no command {name!r}") from None  # a bug: the parser knows no such command
    if name == "worker":
        limit_threads()  # one thread per worker process: effective only before numpy and torch are imported
    return getattr(import_module(module), function)


def _damaged_storage(exc: BaseException) -> str | None:
    """One line for a study database found damaged while it is read (a truncated SQLite file can open and fail
    only at a later query); None for anything else."""
    sa = sys.modules.get("sqlalchemy.exc")
    if sa is not None and isinstance(exc, sa.DatabaseError):
        inner = getattr(exc, "orig", None) or exc
        first = next((ln.strip() for ln in str(inner).splitlines() if ln.strip()), type(inner).__name__)
        return f"the study's database could not be read ({first})"
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # -h, or a usage error already printed as one line
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return command(args.command)(args)
    except UserError as exc:
        say(f"dse: error: {mask(str(exc))}")  # a storage URL in a message never shows its password
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("dse: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `dse show DIR | head`: the reader left; no traceback, and none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        line = _user_error_line(exc)
        if line is None:
            raise  # a bug: keep the traceback
        say(f"dse: error: {line}")
        return EXIT_USAGE


def _user_error_line(exc: Exception) -> str | None:
    """One line for the errors that are the user's data, not a bug: a data file or a study database found
    malformed while reading it; None for anything else."""
    data = sys.modules.get("models.data")  # loaded if it raised: a DataError comes from it
    if data is not None and isinstance(exc, data.DataError):  # a data file found malformed while preparing
        return " ".join(str(exc).split())
    return _damaged_storage(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
