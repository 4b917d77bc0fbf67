"""The `dse` command: run a study, redo its reports, show its picks, inspect the zoo, price one configuration,
validate picks on a board.

User errors print one line `dse: error: ...` and exit 2; heavy imports (torch, Optuna, matplotlib) happen only in
the subcommands that need them.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from vocabulary.configuration import MODES

from .console import say
from .errors import UserError
from .lock import folder_lock
from .redact import mask

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a program its pipe reader left


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other user error
        self.exit(EXIT_USAGE, f"dse: error: {message} (see `{self.prog} -h`)\n")


def _int_at_least(minimum: int, maximum: int | None = None, why: str = ""):
    """argparse type: a whole number >= minimum (and <= maximum), with a one-line message otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text):,} characters)"
            raise argparse.ArgumentTypeError(f"expected a whole number, got {shown!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"expected a number <= {maximum:,}{why}, got {value:,}")
        return value

    return parse


_positive = _int_at_least(1)
_non_negative = _int_at_least(0)
MAX_SAMPLES = 100_000  # one byte each would already be 100 KB of sample store; the firmware model replays shuffles
_samples = _int_at_least(1, MAX_SAMPLES, " (labelled samples a device stores)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dse", description="Design-space exploration of on-device transfer learning (MicroTL) "
                                             "on microcontrollers.")
    parser.add_argument("--version", action="version", version=f"dse (microtl-dse) {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run or resume an optimization study", description=(
        "Run the study a study file describes, or resume it: rerunning the same command runs only the missing "
        "trials. Writes storage, tables, plots and summary.md into the study folder."))
    p.add_argument("study", metavar="STUDY.toml", help="the study file")
    p.add_argument("--out", metavar="DIR", help="study folder (default: runs/<study name>)")
    p.add_argument("--trials", type=_positive, metavar="N", help="total number of trials (overrides the study file)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=_positive, metavar="K", help="run the missing trials in K worker processes "
                                                                  "(others may join with `dse worker`)")
    p.add_argument("--storage", metavar="URL", help="the study's storage (overrides study.storage), e.g. "
                                                    "postgresql://user:password@host:5432/db")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="redo the tables and plots of a study folder from its storage")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the written files as JSON")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("show", help="the Pareto picks of a study folder as a table")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the study and its picks as JSON")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("model", help="the model zoo, or one model's cut points and head", description=(
        "Without NAME: the zoo. With NAME: every layer (each one a cut point) with its int8 output, then the "
        "trainable head for the chosen cut and hidden size."))
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--cut", metavar="LAYER", help="cut point (default: the last frozen layer)")
    p.add_argument("--hidden", type=_non_negative, default=32, metavar="H", help="hidden units of the head "
                                                                                 "(0: one FC layer; default 32)")
    p.add_argument("--classes", type=_positive, metavar="C",
                   help="target classes (default: those of the model's own task)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("predict", help="predicted cost of one configuration", description=(
        "The cost models' prediction for one configuration: RAM and flash terms, latency, energy, and the "
        "alternative of uploading the samples over BLE."))
    p.add_argument("--model", required=True, metavar="NAME")
    p.add_argument("--board", required=True, metavar="BOARD", help="board name or board file")
    p.add_argument("--cut", required=True, metavar="LAYER")
    p.add_argument("--hidden", required=True, type=_non_negative, metavar="H")
    p.add_argument("--samples", required=True, type=_samples, metavar="N")
    p.add_argument("--epochs", type=_positive, metavar="E", help="epochs (required in mode stored; streaming: 1)")
    p.add_argument("--batch", type=_positive, metavar="B", help="default 8 (streaming: 1)")
    p.add_argument("--restore-best", action=argparse.BooleanOptionalAction, default=None,
                   help="early stopping keeps the best epoch's weights (a copy: 4 B per head parameter; default on; "
                        "streaming: off)")
    p.add_argument("--mode", choices=MODES, default="stored",
                   help="stored (MicroTL: store N features, then train; default) or streaming (TinyOL: one batch-1 "
                        "step per sample as it is collected: sets batch 1, epochs 1, no restore-best)")
    p.add_argument("--replay", type=_non_negative, default=0, metavar="K",
                   help="streaming: a ring of the K most recent earlier features, each trained with every new sample "
                        "(default 0)")
    p.add_argument("--task", metavar="T", help="task (sets the class count; default: the model's own task if "
                                                "registered)")
    p.add_argument("--classes", type=_positive, metavar="C", help="target classes (default: the task's)")
    p.add_argument("--firmware", choices=("microtl-dse", "paper"),
                   help="whose firmware a real board prices: this project's (default where the board has an emulator "
                        "map) or the paper's published firmware (its Table III fit)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    from .lifetime_cli import add_arguments as add_deployment_arguments

    add_deployment_arguments(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("validate", help="build and run a trial's firmware on a board; compare with the prediction",
                       description=(
        "Generate the C firmware for a trial's configuration (repeat 0 of the study seed: the draw behind the "
        "trial's first simulated accuracy), build it for the board, run it and compare what the board measured "
        "with what the study predicted. Each record goes to DIR/validations/trial-<N>-<board>.json and into the "
        "study's storage. Exit 1 when a validation failed (recorded with its reason)."))
    p.add_argument("folder", metavar="DIR", help="study folder")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", type=_non_negative, metavar="N", help="the trial number")
    which.add_argument("--picks", type=_positive, metavar="K", help="the first K Pareto picks as `dse show` lists "
                                                                     "them")
    p.add_argument("--board", required=True, metavar="BOARD", help="host | qemu-an386 | nrf52840dk")
    p.add_argument("--timeout", type=_positive_seconds, metavar="S", help="run time limit in seconds (default: "
                                                                           "from the configuration's operations)")
    p.add_argument("--ppk2", nargs="?", const="auto", metavar="PORT", help="nrf52840dk: measure energy with a "
                                                                          "Nordic PPK2 (port, default: the first)")
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.set_defaults(func=cmd_validate)

    from .calibrate_cmd import add_parser as add_calibrate
    from .rescore import add_parser as add_rescore

    add_calibrate(sub)
    add_rescore(sub)

    from .workers import add_worker_parser

    add_worker_parser(sub, _positive, _non_negative)

    from .paper import add_parser as add_paper_parser  # the paper's Tables II and III (dse/paper.py)

    add_paper_parser(sub, _positive)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("microtl-dse")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text}")
    return value


def cmd_run(args) -> int:
    from .studyfile import load_study_file

    spec = load_study_file(args.study)
    out = Path(args.out) if args.out else Path("runs") / spec.name
    if args.storage:
        from dataclasses import replace

        from .storage import check_url

        check_url(args.storage)
        spec = replace(spec, storage=args.storage)
    with folder_lock(out, "dse run"):  # one writer per study folder (dse/lock.py)
        return _run_locked(args, spec, out)


def _run_locked(args, spec, out: Path) -> int:
    from .report import picks, trial_table, write_reports
    from .search import run_study

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


def cmd_report(args) -> int:
    from .folder import StudyFolder
    from .paths import check_output_folder
    from .report import write_reports

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


def cmd_show(args) -> int:
    from .folder import StudyFolder
    from .report import pick_records, pick_rows, picks, trial_table
    from .tables import terminal_width, text_table

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
        from .modes import has_modes

        headers, rows = pick_rows(chosen, short=width is not None, modes=has_modes(table, spec))
        print(text_table(headers, rows, width=width, drop_first=("pick", "batch", "lr", "epochs")))
    return 0


def cmd_model(args) -> int:
    from models.zoo import get_model

    from .menus import cut_point_json, cut_point_menu, zoo_json, zoo_listing
    from .tables import terminal_width

    if args.name is None:
        if args.cut is not None:
            raise UserError("--cut needs a model NAME")
        print(json.dumps(zoo_json(), indent=2) if args.json else zoo_listing(terminal_width()))
        return 0
    try:
        from models.tasks import get_task

        model = get_model(args.name)
        classes = args.classes or get_task(model.source_task).classes
        if args.json:
            print(json.dumps(cut_point_json(model, args.cut, args.hidden, classes), indent=2))
        else:
            print(cut_point_menu(model, args.cut, args.hidden, classes, terminal_width()))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return 0


def cmd_predict(args) -> int:
    from vocabulary.configuration import Configuration
    from models.tasks import get_task
    from models.zoo import get_model

    from .evaluate import price
    from .lifetime_cli import deployment_from_args

    deployment = deployment_from_args(args)
    lifetime = None
    try:
        model = get_model(args.model)
        model.check_cut(args.cut)
        task = get_task(args.task or model.source_task)  # every zoo model names its registered source task
        classes = args.classes or task.classes
        if not classes:
            raise UserError(f"task {task.name!r} does not fix its classes; give --classes")
        config = Configuration(task=task.name, model=args.model, cut=args.cut, hidden=args.hidden,
                               samples=args.samples, **_training_args(args))
        prediction = price(config, args.board, classes=classes, firmware=args.firmware)
        if deployment is not None:
            from cost_models.lifetime import lifetime_for

            lifetime = lifetime_for(config, prediction, deployment, args.board, classes=classes,
                                    firmware=args.firmware)
    except ValueError as exc:  # unknown names, BoardSpecError, CalibrationError, impossible configurations
        raise UserError(str(exc)) from None
    if args.json:
        extra = {} if lifetime is None else {"deployment": deployment.to_dict(), "lifetime": lifetime.to_dict()}
        print(json.dumps({"configuration": config.to_dict(), "board": args.board,
                          "classes": classes,
                          "prediction": prediction.to_dict(), **extra}, indent=2))
    else:
        from .menus import cost_breakdown
        from .tables import terminal_width

        print(cost_breakdown(prediction, config, args.board, classes, terminal_width()))
        if lifetime is not None:
            from .lifetime_cli import breakdown_text

            print("\n" + breakdown_text(lifetime, deployment))
    return 0


def _training_args(args) -> dict:
    """--epochs, --batch, --restore-best, --mode and --replay as Configuration values: streaming sets batch 1,
    epochs 1 and restore-best off; a flag that says otherwise is a conflict (UserError naming it)."""
    from vocabulary.configuration import STREAMING_FIXED

    given = {"epochs": args.epochs, "batch": args.batch, "restore_best": args.restore_best}
    flags = {"epochs": "--epochs", "batch": "--batch", "restore_best": "--restore-best"}
    if args.mode == "streaming":
        for key, fixed in STREAMING_FIXED.items():
            if given[key] is not None and given[key] != fixed:
                shown = "--restore-best" if key == "restore_best" else f"{flags[key]} {given[key]}"
                raise UserError(f"{shown}: --mode streaming trains one pass of batch-1 steps and keeps the last "
                                f"weights ({', '.join(f'{k} {str(v).lower()}' for k, v in STREAMING_FIXED.items())}); "
                                f"leave {flags[key]} out")
        if args.replay > args.samples:
            raise UserError(f"--replay {args.replay}: the ring cannot be larger than the samples (--samples "
                            f"{args.samples})")
        return {**STREAMING_FIXED, "mode": "streaming", "replay": args.replay}
    if args.replay:
        raise UserError(f"--replay {args.replay}: replay is a streaming setting; add --mode streaming")
    if args.epochs is None:
        raise UserError("--epochs is required in mode stored (the training budget)")
    return {"epochs": args.epochs, "batch": 8 if args.batch is None else args.batch,
            "restore_best": True if args.restore_best is None else args.restore_best}


def cmd_validate(args) -> int:
    from .folder import StudyFolder
    from .validation import get_board, load_trial, pick_numbers, validate_trial, validation_table

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
        from .tables import terminal_width

        print(validation_table(records, terminal_width()))
    failed = [r for r in records if not r.ok]
    for r in failed:
        reason = r.reason[len(r.board) + 2:] if r.reason.startswith(f"{r.board}: ") else r.reason
        say(f"dse: error: trial {r.trial} on {r.board}: {reason}")
    return 1 if failed else 0


def _check_validations_folder(folder) -> None:
    """Records and builds go to DIR/validations/ and DIR/validations/work/: folders, writable, before any build."""
    from .paths import check_output_folder
    from .validation import VALIDATIONS_DIR, WORK_DIR

    check_output_folder(Path(folder) / VALIDATIONS_DIR, "validations folder")
    check_output_folder(Path(folder) / VALIDATIONS_DIR / WORK_DIR, "validations work folder")


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
        return args.func(args)
    except UserError as exc:
        say(f"dse: error: {mask(str(exc))}")  # a storage URL in a message never shows its password
        return EXIT_USAGE
    except KeyboardInterrupt:
        say("dse: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `dse show DIR | head`: the reader left; no traceback, and none at exit either
        import os

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
    if isinstance(exc, ValueError):
        from models.data import DataError

        if isinstance(exc, DataError):  # a data file found malformed while preparing
            return " ".join(str(exc).split())
    return _damaged_storage(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
