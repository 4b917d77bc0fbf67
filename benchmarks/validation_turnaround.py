"""Turnaround of `dse validate` on the emulated board: generate, build and run each of a study's top 3 picks on
qemu-an386, as a user re-validating picks sees it.

Target: at most 20 s per pick (generate + build + run). Also prints how many picks' on-board accuracy is within
3 points of the simulated accuracy of the same sample draw (replayed in the firmware's arithmetic, and as the
study's batched simulation gave it). Without DIR, runs the quickstart study into a temporary
folder first (its time is not counted). Prints one line per pick, appends the rows to
benchmarks/results/validation_turnaround.csv, and ends with `max_turnaround_s=<x>`.
Usage: .venv/bin/python benchmarks/validation_turnaround.py [DIR] [--picks 3] [--board qemu-an386]
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
TARGET_S = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", metavar="DIR", help="a study folder (default: run the quickstart study "
                                                                  "into a temporary folder)")
    parser.add_argument("--study", default=str(ROOT / "studies" / "quickstart.toml"))
    parser.add_argument("--picks", type=int, default=3)
    parser.add_argument("--board", default="qemu-an386")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.folder is None:
            folder = Path(tmp) / "study"
            dse = Path(sys.executable).with_name("dse")
            print(f"running {Path(args.study).name} into {folder} (not timed)", flush=True)
            subprocess.run([str(dse), "run", args.study, "--out", str(folder), "--quiet"], check=True)
        else:
            folder = Path(args.folder)
        rows = validate_picks(folder, args.picks, args.board)
    append_rows("validation_turnaround", rows)
    worst = max((r["total_s"] for r in rows), default=0.0)
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"{len(rows)} picks validated on {args.board}, {len(failed)} failed; target <= {TARGET_S:g} s each")
    for key, what in (("accuracy_replay_diff_pp", "the same draw replayed in the firmware's arithmetic"),
                      ("accuracy_diff_pp", "the study's simulation of the same draw")):
        diffs = [abs(float(r[key])) for r in rows if r["status"] == "ok" and r[key]]
        print(f"on-board accuracy within 3 points of {what}: {sum(d <= 3.0 for d in diffs)}/{len(diffs)} picks "
              f"(worst {max(diffs, default=0.0):.2f} points)")
    print(f"max_turnaround_s={worst:.2f}")
    return 1 if failed else 0


def validate_picks(folder: Path, count: int, board_name: str) -> list[dict]:
    from dse.study.folder import StudyFolder
    from dse.commands.validation import get_board, pick_numbers, validate_trial

    loaded = StudyFolder(folder).load()
    board = get_board(board_name)
    rows = []
    for rank, number in enumerate(pick_numbers(folder, count, loaded), start=1):
        start = time.perf_counter()
        record = validate_trial(folder, number, board, loaded=loaded, progress=None)
        total = time.perf_counter() - start
        w = record.measured.wall_s
        m, p = record.measured, record.predicted
        diff = "" if m.accuracy is None or p.accuracy is None else f"{100 * (m.accuracy - p.accuracy):+.2f}"
        replay = "" if m.accuracy is None or p.replay_accuracy is None else \
            f"{100 * (m.accuracy - p.replay_accuracy):+.2f}"
        row = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(),
            "cores": os.cpu_count(),
            "study": record.study,
            "board": board_name,
            "pick": rank,
            "trial": number,
            "cut": record.configuration.get("cut"),
            "hidden": record.configuration.get("hidden"),
            "samples": record.configuration.get("samples"),
            "epochs": record.configuration.get("epochs"),
            "status": record.status,
            "generate_s": round(w.get("generate", 0.0), 2),
            "build_s": round(w.get("build", 0.0), 2),
            "run_s": round(w.get("run", 0.0), 2),
            "total_s": round(total, 2),
            "instructions": sum((m.instructions or {}).values()),
            "accuracy_diff_pp": diff,
            "accuracy_replay_diff_pp": replay,
        }
        rows.append(row)
        print(f"pick {rank} (trial {number}, cut {row['cut']}, hidden {row['hidden']}, {row['samples']} samples): "
              f"{record.status}{' (' + record.reason + ')' if record.reason else ''}; generate {row['generate_s']} s, "
              f"build {row['build_s']} s, run {row['run_s']} s, total {row['total_s']} s; "
              f"{row['instructions']:,} instructions; accuracy vs the same draw replayed {replay or '?'} points, "
              f"vs the study's simulation {diff or '?'} points",
              flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
