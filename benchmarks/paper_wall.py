"""Wall time of `dse paper --task har3b` with no --data (UCI HAR windows rebuilt from the HAPT recordings), from a
cold cache (window building, pretraining, features, every Table II cell) and then warm (everything cached).

Target (issue 12): cold <= 20 min, warm <= 3 min on the project's 2-core machines. The machine may be shared: the
row records the load average next to the figure.
Prints the figures and appends rows to benchmarks/results/paper_wall.csv.
Usage: .venv/bin/python benchmarks/paper_wall.py [--task har3b] [--cache DIR] [--warm-only]
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


def run(task: str, cache: Path, out: Path) -> float:
    dse = Path(sys.executable).with_name("dse")
    env = dict(os.environ, MICROTL_CACHE=str(cache))
    env.pop("MICROTL_UCI_HAR", None)
    start = time.perf_counter()
    subprocess.run([str(dse), "paper", "--task", task, "--out", str(out)], check=True, env=env)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="har3b")
    parser.add_argument("--cache", help="cache folder to use (default: a new temporary one, i.e. cold)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "paper-har3b"))
    parser.add_argument("--warm-only", action="store_true", help="only the warm run (the cache must be filled)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache) if args.cache else Path(tmp) / "cache"
        rows = []
        for phase in (("warm",) if args.warm_only else ("cold", "warm")):
            load_before = os.getloadavg()[0]
            seconds = run(args.task, cache, Path(args.out))
            row = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
                   "cpus": os.cpu_count(), "task": args.task, "phase": phase, "seconds": round(seconds, 1),
                   "target_seconds": 1200 if phase == "cold" else 180, "load_before": round(load_before, 2),
                   "load_after": round(os.getloadavg()[0], 2)}
            rows.append(row)
            print(f"dse paper --task {args.task}, {phase} cache: {seconds:.0f} s (target {row['target_seconds']} s; "
                  f"load average {row['load_before']} -> {row['load_after']} on {row['cpus']} cores)", flush=True)
    print(append_rows("paper_wall", rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
