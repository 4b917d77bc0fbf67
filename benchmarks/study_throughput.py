"""Study throughput: trials per minute of the quickstart study with 1 worker (the in-process run) and with K worker
processes (`dse run --workers K`), on a warm cache (the pretrained network and features are prepared first).

Two figures per run: wall (the whole `dse run` command: start-up, workers' start-up, trials, reports) and steady
(trials between the first trial's start and the last trial's end, from the storage's timestamps).
Prints the figures and appends rows to benchmarks/results/study_throughput.csv.
Usage: .venv/bin/python benchmarks/study_throughput.py [--study studies/quickstart.toml] [--workers 2]
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

from results_csv import append_rows

ROOT = Path(__file__).resolve().parents[1]


def run(dse: Path, study: str, out: Path, trials: int | None, workers: int | None, env: dict) -> float:
    cmd = [str(dse), "run", study, "--out", str(out), "--quiet"]
    cmd += ["--trials", str(trials)] if trials else []
    cmd += ["--workers", str(workers)] if workers else []
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - start


def steady_rate(out: Path) -> tuple[int, float]:
    """(finished trials, trials per minute between the first start and the last completion)."""
    sys.path.insert(0, str(ROOT))
    from dse.study.folder import StudyFolder

    study, _ = StudyFolder(out).load()
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    span = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return len(trials), 60 * len(trials) / span


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default=str(ROOT / "studies" / "quickstart.toml"))
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the parallel run (default 2)")
    parser.add_argument("--trials", type=int, help="override the study file's trial count")
    args = parser.parse_args()
    dse = Path(sys.executable).with_name("dse")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MICROTL_CACHE=str(Path(tmp) / "cache"))
        print("warming the cache (pretraining, quantization, features) with a 1-trial run ...", flush=True)
        run(dse, args.study, Path(tmp) / "warm", 1, None, env)
        for workers in (None, args.workers):
            out = Path(tmp) / f"w{workers or 1}"
            wall = run(dse, args.study, out, args.trials, workers, env)
            finished, steady = steady_rate(out)
            row = {
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "host": platform.node(),
                "cores": os.cpu_count(),
                "load_1min": round(os.getloadavg()[0], 2),
                "study": Path(args.study).name,
                "workers": workers or 1,
                "trials": finished,
                "wall_s": round(wall, 1),
                "trials_per_min_wall": round(60 * finished / wall, 1),
                "trials_per_min_steady": round(steady, 1),
            }
            rows.append(row)
            print(f"workers={row['workers']} trials={finished} wall_s={row['wall_s']} "
                  f"trials_per_min_wall={row['trials_per_min_wall']} "
                  f"trials_per_min_steady={row['trials_per_min_steady']}", flush=True)
    append_rows("study_throughput", rows)
    one, many = rows
    print(f"speedup_wall={one['wall_s'] / many['wall_s']:.2f} "
          f"speedup_steady={many['trials_per_min_steady'] / one['trials_per_min_steady']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
