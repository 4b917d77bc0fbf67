"""Wall time of the quickstart study from a cold cache (pretraining included), as a new user sees it.

Target (issue 2): at least 60 trials within 3 minutes on 2 cores after installation.
Prints the figures and appends a row to benchmarks/results/quickstart_wall.csv.
Usage: .venv/bin/python benchmarks/quickstart_wall.py [--study studies/quickstart.toml]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default=str(ROOT / "studies" / "quickstart.toml"))
    args = parser.parse_args()
    dse = Path(sys.executable).with_name("dse")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MICROTL_CACHE=str(Path(tmp) / "cache"))  # cold: pretraining is part of the time
        out = Path(tmp) / "study"
        start = time.perf_counter()
        subprocess.run([str(dse), "run", args.study, "--out", str(out)], check=True, env=env)
        wall = time.perf_counter() - start
        import pandas as pd

        trials = pd.read_csv(out / "trials.csv")
        complete = int((trials["state"] == "COMPLETE").sum())
        pareto = len(pd.read_csv(out / "pareto.csv"))
    row = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cores": os.cpu_count(),
        "study": Path(args.study).name,
        "trials": len(trials),
        "complete": complete,
        "pareto": pareto,
        "wall_s": round(wall, 1),
    }
    append_rows("quickstart_wall", [row])
    print(f"trials={row['trials']} complete={complete} pareto={pareto} wall_s={row['wall_s']} (target <= 180 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
