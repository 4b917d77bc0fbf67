"""Streaming picks validated on the emulated board (issue 14's target): build and run the top K *streaming* Pareto
picks of a study on qemu-an386 and compare with the predictions.

Targets, per pick: on-board accuracy equal to the same draw replayed in the firmware's arithmetic; retired
instructions of each phase (collection, training, evaluation; qemu plugin, exact) within +-3% of the qemu-an386
calibration's prediction; peak RAM of the deployed image within 1% of the qemu-an386 RAM model's prediction (the
board the image ran on: a study priced on nrf52840dk adds that board's platform layer, reported apart).

Without DIR, runs studies/streaming_vs_stored.toml into a temporary folder first (not timed). Prints one block per
pick and a last line `streaming_validation: <met>/<picks> picks meet all targets`; appends the rows to
benchmarks/results/streaming_validation.csv.
Usage: .venv/bin/python benchmarks/streaming_validation.py [DIR] [--picks 3] [--board qemu-an386]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_csv import append_rows  # noqa: E402 (benchmarks/ is the script's folder)

INSTRUCTIONS_TOLERANCE = 0.03
RAM_TOLERANCE = 0.01


def streaming_picks(folder: Path, count: int, loaded) -> list[int]:
    """The first `count` streaming picks as `dse show` lists them (feasible Pareto, best accuracy first)."""
    from dse.reports.modes import mode_of
    from dse.reports.report import picks, trial_table

    study, spec = loaded
    chosen = picks(trial_table(study, spec), spec, unique=True)
    streams = chosen[chosen.apply(mode_of, axis=1) == "streaming"] if len(chosen) else chosen
    return [int(n) for n in streams["number"][:count]]


def measure(folder: Path, number: int, board, loaded) -> dict:
    """Validate one trial and compare it with the qemu-an386 predictions."""
    from cost_models.predict import predict
    from dse.commands.validation import load_trial, validate_trial

    info = load_trial(folder, number, loaded)
    start = time.perf_counter()
    record = validate_trial(folder, number, board, loaded=loaded, info=info, progress=None)
    wall = time.perf_counter() - start
    m, p = record.measured, record.predicted
    test = int(info.accuracy.get("test_size") or 0)
    on_board = predict(info.config, board.name, classes=info.spec.task.classes, test_inputs=test)
    row = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
        "cores": os.cpu_count(), "study": record.study, "trial": number, "board": board.name,
        **{k: info.config.to_dict()[k] for k in ("cut", "hidden", "samples", "lr", "momentum", "mode", "replay")},
        "status": record.status, "reason": record.reason or "", "wall_s": round(wall, 1),
        "accuracy": m.accuracy, "accuracy_replay": p.replay_accuracy, "accuracy_simulated": p.accuracy,
        "accuracy_equal": m.accuracy is not None and m.accuracy == p.replay_accuracy,
    }
    worst = 0.0
    for phase in ("collection", "training", "evaluation"):
        measured = (m.instructions or {}).get(phase)
        predicted = (p.instructions or {}).get(phase) if isinstance(p.instructions, dict) else None
        error = None if measured is None or not predicted else predicted / measured - 1
        row[f"instructions.{phase}"], row[f"predicted_instructions.{phase}"] = measured, predicted
        row[f"instructions_error.{phase}"] = error
        worst = max(worst, abs(error)) if error is not None else float("inf")
    row["instructions_worst_error"] = worst
    ram = m.deployed_peak_ram_bytes
    row["ram_measured"], row["ram_predicted"] = ram, on_board.ram_total
    row["ram_error"] = None if ram is None else on_board.ram_total / ram - 1
    row["ram_predicted_study_board"], row["study_board"] = p.ram_total, info.spec.board
    row["instructions_ok"] = worst <= INSTRUCTIONS_TOLERANCE
    row["ram_ok"] = row["ram_error"] is not None and abs(row["ram_error"]) <= RAM_TOLERANCE
    row["all_ok"] = record.status == "ok" and row["accuracy_equal"] and row["instructions_ok"] and row["ram_ok"]
    return row


def show(row: dict) -> None:
    def pct(x):
        return "?" if x is None else f"{100 * x:+.2f}%"

    reason = f" - {row['reason']}" if row["reason"] else ""
    print(f"trial {row['trial']} (cut {row['cut']}, hidden {row['hidden']}, {row['samples']} samples, replay "
          f"{row['replay']}, momentum {row['momentum']:g}): {row['status']}{reason}; {row['wall_s']} s")
    def acc(x):
        return "?" if x is None else f"{100 * x:.2f}%"

    equal = "equal" if row["accuracy_equal"] else "DIFFERENT"
    print(f"  accuracy on board {acc(row['accuracy'])}, replay {acc(row['accuracy_replay'])} ({equal}); "
          f"study's simulation {acc(row['accuracy_simulated'])}")
    for phase in ("collection", "training", "evaluation"):
        measured, predicted = row[f"instructions.{phase}"], row[f"predicted_instructions.{phase}"]
        shown_m = "?" if measured is None else f"{measured:,}"
        shown_p = "not predicted" if predicted is None else f"{predicted:,.0f}"
        error = pct(row[f"instructions_error.{phase}"])
        print(f"  instructions {phase}: measured {shown_m}, predicted {shown_p} ({error})")
    print(f"  deployed peak RAM: measured {row['ram_measured']} B, predicted {row['ram_predicted']} B on "
          f"{row['board']} ({pct(row['ram_error'])}); {row['ram_predicted_study_board']} B predicted on the study's "
          f"{row['study_board']}")
    print(f"  targets: accuracy = replay {'met' if row['accuracy_equal'] else 'MISSED'}, instructions within "
          f"+-{100 * INSTRUCTIONS_TOLERANCE:g}% {'met' if row['instructions_ok'] else 'MISSED'}, RAM within "
          f"{100 * RAM_TOLERANCE:g}% {'met' if row['ram_ok'] else 'MISSED'}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", metavar="DIR", help="a study folder (default: run the "
                                                                  "streaming_vs_stored study into a temporary folder)")
    parser.add_argument("--study", default=str(ROOT / "studies" / "streaming_vs_stored.toml"))
    parser.add_argument("--picks", type=int, default=3)
    parser.add_argument("--board", default="qemu-an386")
    args = parser.parse_args()
    from dse.study.folder import StudyFolder
    from dse.commands.validation import get_board

    with tempfile.TemporaryDirectory() as tmp:
        if args.folder is None:
            folder = Path(tmp) / "study"
            print(f"running {Path(args.study).name} into {folder} (not timed)", flush=True)
            subprocess.run([str(Path(sys.executable).with_name("dse")), "run", args.study, "--out", str(folder),
                            "--quiet"], check=True)
        else:
            folder = Path(args.folder)
        loaded = StudyFolder(folder).load()
        numbers = streaming_picks(folder, args.picks, loaded)
        if not numbers:
            print("no streaming pick on the front: nothing to validate")
            return 1
        board = get_board(args.board)
        rows = []
        for number in numbers:
            rows.append(measure(folder, number, board, loaded))
            show(rows[-1])
    path = append_rows("streaming_validation", rows)
    met = sum(r["all_ok"] for r in rows)
    print(f"rows appended to {path.relative_to(ROOT)}")
    print(f"streaming_validation: {met}/{len(rows)} picks meet all targets")
    return 0 if met == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
