"""`dse rescore DIR`: re-price a finished study with the refitted firmware cost models and show how its Pareto
front moved.

The study's own predictions (trial user attribute "predicted") are never touched: the new ones (peak RAM, flash
and instructions per phase of this project's firmware, predicted from the board's current run records) go into
the study user attribute "rescored/<board>/<calibration sha256[:12]>" (Optuna does not let finished trials change)
and into DIR/rescore/<board>-<sha12>.json; DIR/rescore/<board>-<sha12>.png plots the old and new fronts of
accuracy against RAM. Energy and latency are not re-priced: the emulated board has no clock.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("rescore", help="re-price a finished study with the refitted firmware cost models",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--board", default="qemu-an386", metavar="BOARD",
                   help="instructions-only board whose firmware calibration prices the trials (default qemu-an386)")
    p.add_argument("--calibration", metavar="FILE", help="a calibration snapshot (dse calibrate --out) to use "
                                                         "instead of the board's current records")
    p.set_defaults(func=cmd_rescore)


def front(points: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """Non-dominated (number, accuracy, ram) points: accuracy maximized, RAM minimized; sorted by RAM."""
    out = []
    for n, acc, ram in sorted(points, key=lambda p: (p[2], -p[1])):
        if not out or acc > out[-1][1]:
            out.append((n, acc, ram))
    return out


def rescore(folder: str | Path, board: str = "qemu-an386", calibration=None) -> dict:
    from cost_models.board import BoardError, load_board
    from cost_models.firmware_fit import FirmwareCalibrationError, load_firmware_calibration
    from cost_models.predict import predict
    from models.config import Configuration

    from .atomic import write_text
    from .folder import StudyFolder
    from .search import ATTR_ACCURACY, ATTR_CONFIG, ATTR_PREDICTED

    folder = Path(folder)
    try:
        b = load_board(board)
        if not b.instructions_only:
            raise UserError(f"--board {board}: rescoring uses an instructions-only board's firmware calibration")
        cal = calibration or load_firmware_calibration(b)
    except (BoardError, FirmwareCalibrationError) as exc:
        raise UserError(" ".join(str(exc).split())) from None
    study, spec = StudyFolder(folder).load()
    import optuna

    rows = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if ATTR_CONFIG not in t.user_attrs:
            continue
        config = Configuration.from_dict(t.user_attrs[ATTR_CONFIG])
        acc = t.user_attrs.get(ATTR_ACCURACY, {})
        old = t.user_attrs.get(ATTR_PREDICTED, {})
        epochs = min(float(acc.get("epochs_mean") or config.epochs), config.epochs)
        try:
            p = predict(config, b, epochs_run=epochs, classes=spec.task.classes or None,
                        test_inputs=int(acc.get("test_size") or 0), firmware_calibration=cal)
        except ValueError as exc:
            rows[t.number] = {"error": " ".join(str(exc).split())}
            continue
        rows[t.number] = {"accuracy": acc.get("mean"), "old_ram_total": old.get("ram_total"),
                          "old_flash_total": old.get("flash_total"), "ram_total": p.ram_total,
                          "flash_total": p.flash_total, "fits_ram": p.fits_ram,
                          **{f"instructions.{k}": v for k, v in p.instructions.items()}}
    key = f"rescored/{board}/{cal.digest[:12]}"
    result = {"board": board, "calibration_sha256": cal.digest, "calibration_files": list(cal.files),
              "labels": "predicted (firmware cost models fitted on run records measured on " + board + ")",
              "trials": rows}
    study.set_user_attr(key, json.loads(json.dumps(result)))
    out = folder / "rescore"
    out.mkdir(exist_ok=True)
    write_text(out / f"{board}-{cal.digest[:12]}.json", json.dumps(result, indent=1) + "\n")
    ok = [(n, r["accuracy"], r) for n, r in rows.items() if "error" not in r and r["accuracy"] is not None]
    old_front = front([(n, a, r["old_ram_total"]) for n, a, r in ok if r["old_ram_total"] is not None])
    new_front = front([(n, a, r["ram_total"]) for n, a, r in ok])
    png = out / f"{board}-{cal.digest[:12]}.png"
    _plot(old_front, new_front, [(a, r["old_ram_total"], r["ram_total"]) for _, a, r in ok], png, board)
    result.update(key=key, old_front=[n for n, _, _ in old_front], new_front=[n for n, _, _ in new_front],
                  plot=str(png), json=str(out / f"{board}-{cal.digest[:12]}.json"))
    return result


def _plot(old, new, all_points, path: Path, board: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.scatter([p[1] / 1024 for p in all_points if p[1]], [100 * p[0] for p in all_points if p[1]], s=8, c="0.7",
               label="trials, original prediction")
    ax.scatter([p[2] / 1024 for p in all_points], [100 * p[0] for p in all_points], s=8, c="C1", alpha=0.5,
               label=f"trials, rescored ({board} firmware model)")
    ax.step([r / 1024 for _, _, r in old], [100 * a for _, a, _ in old], where="post", c="k", label="old front")
    ax.step([r / 1024 for _, _, r in new], [100 * a for _, a, _ in new], where="post", c="C3", label="new front")
    ax.set_xlabel("predicted peak RAM (KiB)")
    ax.set_ylabel("simulated accuracy (%)")
    ax.legend(fontsize=7)
    ax.set_title("Pareto front (accuracy vs RAM) before and after rescoring", fontsize=9)
    save_figure(fig, path)
    plt.close(fig)


def cmd_rescore(args) -> int:
    calibration = None
    if args.calibration:
        from cost_models.firmware_fit import FirmwareCalibrationError, read_firmware_calibration

        try:
            calibration = read_firmware_calibration(args.calibration)
        except FirmwareCalibrationError as exc:
            raise UserError(" ".join(str(exc).split())) from None
    try:
        result = rescore(args.folder, args.board, calibration)
    except UserError:
        raise
    except Exception as exc:  # StudyFolderError and the like
        if type(exc).__name__ == "StudyFolderError":
            raise UserError(str(exc)) from None
        raise
    rows = [r for r in result["trials"].values() if "error" not in r]
    old_set, new_set = set(result["old_front"]), set(result["new_front"])
    changes = sorted(r["ram_total"] / r["old_ram_total"] - 1 for r in rows if r.get("old_ram_total"))
    print(f"rescored {len(rows)} trials with the {result['board']} firmware calibration "
          f"(sha256 {result['calibration_sha256'][:12]}); stored under study attribute {result['key']!r}")
    if changes:
        print(f"peak RAM, new / old prediction - 1: median {changes[len(changes) // 2]:+.1%}, "
              f"range {changes[0]:+.1%} .. {changes[-1]:+.1%}; {sum(not r['fits_ram'] for r in rows)} no longer fit")
    print(f"Pareto front (accuracy vs RAM): {len(old_set)} -> {len(new_set)} trials; kept {len(old_set & new_set)}, "
          f"left {sorted(old_set - new_set)}, joined {sorted(new_set - old_set)}")
    print("energy and latency are not re-priced (the emulated board has no clock)")
    print(f"plot: {result['plot']}\ntable: {result['json']}")
    return 0


