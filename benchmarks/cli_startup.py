"""Start-up time of the `dse` command: wall time of `python -m dse --help` (issue 15's target: under 0.3 s), and what
that start loads (our modules; none of the heavy packages may be among them).

Each run is a fresh interpreter. Two settings: bytecode as the environment has it (PYTHONDONTWRITEBYTECODE set:
every module compiled at each start) and bytecode cached (a fresh PYTHONPYCACHEPREFIX, warmed by one run). The
machine may be shared: the load average is recorded, and min and median are printed.
Prints the figures, appends rows to benchmarks/results/cli_startup.csv; the last line is `help_median_ms=<x>`
(bytecode cached).
Usage: .venv/bin/python benchmarks/cli_startup.py [--runs 15] [--tree DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_csv import append_rows  # noqa: E402 (benchmarks/ is the script's folder)

HEAVY = ("torch", "optuna", "pandas", "matplotlib", "seaborn", "scipy", "numpy", "sqlalchemy")
OURS = ("vocabulary", "models", "cost_models", "firmware", "dse")
PROBE = ("import contextlib, io, json, sys\n"
         "from dse.cli import main\n"
         "with contextlib.redirect_stdout(io.StringIO()):\n"
         "    main(['--help'])\n"
         "print(json.dumps(sorted(sys.modules)))\n")


def wall_ms(tree: Path, env: dict, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dse", "--help"], cwd=tree, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        out.append(1e3 * (time.perf_counter() - start))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tree", type=Path, default=ROOT, help="source tree whose dse runs (default: this one)")
    args = parser.parse_args()
    tree = args.tree.resolve()
    loaded = json.loads(subprocess.run([sys.executable, "-c", PROBE], cwd=tree, check=True, capture_output=True,
                                       text=True).stdout)
    heavy = sorted({m.split(".")[0] for m in loaded} & set(HEAVY))
    ours = [m for m in loaded if m.split(".")[0] in OURS]
    when, load = datetime.now(timezone.utc).isoformat(timespec="seconds"), os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        settings = {
            "no bytecode": {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            "bytecode cached": {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                                "PYTHONPYCACHEPREFIX": cache},
        }
        wall_ms(tree, settings["bytecode cached"], 1)  # writes the cache
        for name, env in settings.items():
            times = wall_ms(tree, env, args.runs)
            low, median = min(times), statistics.median(times)
            print(f"dse --help, {name}: min {low:.0f} ms, median {median:.0f} ms ({args.runs} runs)")
            rows.append({"date": when, "machine": platform.node(), "load": f"{load:.2f}", "tree": str(tree),
                         "setting": name, "runs": args.runs, "min_ms": f"{low:.1f}", "median_ms": f"{median:.1f}",
                         "our_modules": len(ours), "heavy_loaded": " ".join(heavy) or "none"})
    print(f"loaded by `dse --help`: {len(ours)} of our modules; heavy packages: {', '.join(heavy) or 'none'}")
    path = append_rows("cli_startup", rows)
    print(f"rows appended to {path.relative_to(ROOT)}; load average {load:.2f}")
    print(f"help_median_ms={float(rows[-1]['median_ms']):.0f}")
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main())
