"""The `dse` command line: every command's arguments and help, built at every start of `dse`.

Loads no command's module (dse.cli loads the one that runs), hence none of Optuna, pandas, matplotlib, torch or
scipy: `dse --help`, `dse COMMAND --help` and a usage error stay fast. The command's name (`args.command`) is the key
of dse.cli's command table.
"""
from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

from dse.errors import EXIT_USAGE
from vocabulary.configuration import DOMAINS, MODES

# cost_models.user_data.ENV, spelled out: importing it would load cost_models' whole pricing layer at every start
# (tests/test_architecture.py checks that the two agree)
CALIBRATION_ENV = "MICROTL_CALIBRATION_DIR"
# the first paragraph of the docstrings of dse/commands/calibrate.py and dse/commands/rescore.py
CALIBRATE_DESCRIPTION = ("`dse calibrate`: measure our firmware on a board over a grid of shapes, import validation "
                         "records, refit the\nfirmware cost models and report their cross-validated error.")
RESCORE_DESCRIPTION = ("`dse rescore DIR`: re-price a finished study with the current (refitted) firmware cost models "
                       "and show how its\nPareto front moved.")
FIRMWARE_BOARDS = ("qemu-an386",)  # boards whose campaign counts instructions (the real board needs a probe)
MAP_BOARDS = ("nrf52840dk",)  # real boards priced through the emulator map (cost_models.microtl_dse.emulator_map)
PAPER_TASKS = ("cifar3", "har3b")
DEPLOYMENT_FLAGS = {"battery_mah": "--battery-mah", "battery_v": "--battery-v",
                    "inferences_per_hour": "--inferences-per-hour", "adaptations_per_month": "--adaptations-per-month",
                    "sleep_current_ua": "--sleep-current-ua"}


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


def _field(name: str, maximum: int | None = None, why: str = ""):
    """argparse type of an integer Configuration field: its declared lower bound (vocabulary DOMAINS)."""
    return _int_at_least(DOMAINS[name].at_least, maximum, why)


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

    p = sub.add_parser("report", help="redo the tables and plots of a study folder from its storage")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the written files as JSON")

    p = sub.add_parser("show", help="the Pareto picks of a study folder as a table")
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print the study and its picks as JSON")

    p = sub.add_parser("model", help="the model zoo, or one model's cut points and head", description=(
        "Without NAME: the zoo. With NAME: every layer (each one a cut point) with its int8 output, then the "
        "trainable head for the chosen cut and hidden size."))
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--cut", metavar="LAYER", help="cut point (default: the last frozen layer)")
    p.add_argument("--hidden", type=_field("hidden"), default=32, metavar="H", help="hidden units of the head "
                                                                                 "(0: one FC layer; default 32)")
    p.add_argument("--classes", type=_positive, metavar="C",
                   help="target classes (default: those of the model's own task)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")

    p = sub.add_parser("predict", help="predicted cost of one configuration", description=(
        "The cost models' prediction for one configuration: RAM and flash terms, latency, energy, and the "
        "alternative of uploading the samples over BLE."))
    p.add_argument("--model", required=True, metavar="NAME")
    p.add_argument("--board", required=True, metavar="BOARD", help="board name or board file")
    p.add_argument("--cut", required=True, metavar="LAYER")
    p.add_argument("--hidden", required=True, type=_field("hidden"), metavar="H")
    p.add_argument("--samples", required=True, metavar="N",
                   type=_field("samples", MAX_SAMPLES, " (labelled samples a device stores)"))
    p.add_argument("--epochs", type=_field("epochs"), metavar="E",
                   help="epochs (required in mode stored; streaming: 1)")
    p.add_argument("--batch", type=_field("batch"), metavar="B", help="default 8 (streaming: 1)")
    p.add_argument("--restore-best", action=argparse.BooleanOptionalAction, default=None,
                   help="early stopping keeps the best epoch's weights (a copy: 4 B per head parameter; default on; "
                        "streaming: off)")
    p.add_argument("--mode", choices=MODES, default="stored",
                   help="stored (MicroTL: store N features, then train; default) or streaming (TinyOL: one batch-1 "
                        "step per sample as it is collected: sets batch 1, epochs 1, no restore-best)")
    p.add_argument("--replay", type=_field("replay"), default=0, metavar="K",
                   help="streaming: a ring of the K most recent earlier features, each trained with every new sample "
                        "(default 0)")
    p.add_argument("--task", metavar="T", help="task (sets the class count; default: the model's own task if "
                                                "registered)")
    p.add_argument("--classes", type=_positive, metavar="C", help="target classes (default: the task's)")
    p.add_argument("--firmware", choices=("microtl-dse", "paper"),
                   help="whose firmware a real board prices: this project's (default where the board has an emulator "
                        "map) or the paper's published firmware (its Table III fit)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    _add_deployment(p)

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

    _add_calibrate(sub)
    _add_rescore(sub)
    _add_worker(sub)
    _add_paper(sub)  # the paper's Tables II and III (dse/commands/paper.py)
    return parser


def _version() -> str:
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


def _add_deployment(p: argparse.ArgumentParser) -> None:
    """`dse predict`'s deployment options: a file with a [deployment] table, and/or one flag per key."""
    p.add_argument("--deployment", metavar="FILE", help="a TOML file with a [deployment] table (e.g. a study file): "
                                                       "prints the battery lifetime of both alternatives")
    for key, flag in DEPLOYMENT_FLAGS.items():
        p.add_argument(flag, dest=f"dep_{key}", type=float, metavar="X", help=f"deployment {key} (overrides FILE)")


def _add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="measure the firmware's costs on a board and fit the cost models",
                       description=CALIBRATE_DESCRIPTION)
    p.add_argument("--board", required=True, metavar="BOARD",
                   help=f"one of: {', '.join(FIRMWARE_BOARDS)} (campaign); {', '.join(MAP_BOARDS)} (emulator map: "
                        "--add, --refit, --report)")
    p.add_argument("--out", metavar="FILE", help="write the fitted calibration (JSON snapshot) here")
    p.add_argument("--refit", action="store_true", help="no campaign: refit from the stored records")
    p.add_argument("--add", action="append", default=[], metavar="DIR",
                   help="import validation records (DIR/*.json, e.g. a study's validations/) before refitting")
    p.add_argument("--report", action="store_true", help="print the cross-validated error and write residual plots")
    p.add_argument("--plots", metavar="DIR", help="residual plots go here (default: runs/calibration-<board>)")
    p.add_argument("--records", metavar="DIR", help="record directory, read and written alone (default: the shipped "
                                                    "records with the user's calibration folder on top)")
    p.add_argument("--calibration-dir", metavar="DIR", help="the user's calibration folder, where imports and refits "
                                                            f"are written (default: ${CALIBRATION_ENV} or the user data folder)")
    p.add_argument("--work", metavar="DIR", help="build directory of the campaign (default: a temporary one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the fit (and with --report its errors) as JSON")


def _add_rescore(sub) -> None:
    p = sub.add_parser("rescore", help="re-price a finished study with the refitted firmware cost models",
                       description=RESCORE_DESCRIPTION)
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--board", metavar="BOARD", help="board to price on (default: the study's own board)")
    p.add_argument("--calibration", metavar="FILE", help="a firmware calibration snapshot (dse calibrate --out) to "
                                                         "use instead of the emulator's current records")
    p.add_argument("--json", action="store_true", help="print the rescoring (old and new picks, changes, every "
                                                       "trial's old and new prediction) as JSON")


def _add_worker(sub) -> None:
    p = sub.add_parser("worker", help="join a study through its shared storage and run its queued trials",
                       description=(
        "Join a study started by `dse run STUDY --storage URL --workers K` (on this or another machine) and run "
        "its queued trials, one at a time, until none is left. The study file must be the one the study was "
        "started from (except study.trials)."))
    p.add_argument("study", metavar="STUDY.toml", help="the study file")
    p.add_argument("--storage", metavar="URL", help="the study's storage (default: study.storage of the file), "
                                                    "e.g. postgresql://user:password@host:5432/db")
    p.add_argument("--index", type=_non_negative, metavar="I", help="this worker's number: seeds its sampler "
                                                                   "(default: random)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_paper(sub) -> None:
    p = sub.add_parser("paper", help="regenerate the paper's Tables II and III next to the published values",
                       description=(
        "Regenerate Table II (accuracy of MicroTL, Edge-TL and Cloud-QAT per sample count, uplink) and Table III "
        "(RAM, flash, time, energy predicted by the cost models) of the MicroTL paper from the framework, next "
        "to the published values with the difference per cell: table2.csv, table3.csv, PNG plots and summary.md "
        "in the output folder. DIR holds your downloads (cifar-10-python.tar.gz, UCI HAR Dataset.zip); without "
        "--data, har3b runs on UCI HAR's windows rebuilt from the HAPT recordings (the har extra)."))
    p.add_argument("--data", metavar="DIR", help="folder with the data set downloads (default: each task's "
                                                 "environment variable; har3b without a download uses the HAPT "
                                                 "recordings of the har extra)")
    p.add_argument("--out", default="runs/paper", metavar="DIR", help="output folder (default runs/paper)")
    p.add_argument("--task", choices=(*PAPER_TASKS, "both"), default="both", help="default both")
    p.add_argument("--repeats", type=_positive, metavar="R", help="sample draws per MicroTL / Edge-TL cell "
                                                                 "(default: the study file's repeats)")
    p.add_argument("--samples", type=_positive, nargs="+", metavar="N", help="sample counts (default: the study "
                                                                             "file's, 100..600)")
    p.add_argument("--qat-epochs", type=_positive, default=10, metavar="E", help="Cloud-QAT epochs (default 10)")
    p.add_argument("--qat-repeats", type=_positive, default=3, metavar="R", help="Cloud-QAT runs (default 3)")
