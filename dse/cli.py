"""The `dse` command: run a study, redo its reports, show its picks, inspect the zoo, price one configuration,
validate picks on a board.

User errors print one line `dse: error: ...` and exit 2. The arguments of every command are dse/parser.py's; the
command table below (`command`) loads the module of the command that runs, and only that one.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable

from dse.console import say
from dse.errors import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE, UserError
from dse.parser import build_parser
from dse.redact import mask
from dse.search.threads import limit_threads


def command(name: str) -> Callable[..., int]:
    """The function that runs command `name`.

    The one place dse defers imports on purpose, for start-up time: a command's module imports what it needs at
    module level (Optuna, pandas, matplotlib, torch, scipy, the firmware's build and boards), so loading it only here
    keeps `dse --help`, `dse COMMAND --help` and a usage error free of them (issue 15: `dse --help` under 0.3 s).
    """
    if name == "run":
        from dse.commands.run import cmd_run as run
    elif name == "report":
        from dse.commands.report import cmd_report as run
    elif name == "show":
        from dse.commands.show import cmd_show as run
    elif name == "model":
        from dse.commands.model import cmd_model as run
    elif name == "predict":
        from dse.commands.model import cmd_predict as run
    elif name == "validate":
        from dse.commands.validate import cmd_validate as run
    elif name == "calibrate":
        from dse.commands.calibrate import cmd_calibrate as run
    elif name == "rescore":
        from dse.commands.rescore import cmd_rescore as run
    elif name == "worker":
        limit_threads()  # one thread per worker process: effective only before numpy and torch are imported
        from dse.search.workers import cmd_worker as run
    elif name == "paper":
        from dse.commands.paper import cmd_paper as run
    else:
        raise ValueError(f"no command {name!r}")  # a bug: the parser knows no such command
    return run


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
