"""Cost of one cost-model prediction (cost_models.predict) per call, for both firmware models, next to what a
trial's simulation costs (about a second): predictions must stay cheap enough to price every trial of a study and
re-price whole studies (`dse rescore`).

Configurations: the digits CNN at each cut with a 32-unit head, 200 samples, 20 epochs, priced on the nRF52840 DK
(the board studies use by default). The first call of each (board, firmware) fits the models and is timed apart.
The machine may be shared: the load average is recorded.
Prints the figures, appends rows to benchmarks/results/predict_speed.csv; the last line is `worst_call_ms=<x>`.
Usage: .venv/bin/python benchmarks/predict_speed.py [--calls 200]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_csv import append_rows  # noqa: E402 (benchmarks/ is the script's folder)

from cost_models import predict  # noqa: E402
from vocabulary.configuration import Configuration  # noqa: E402
from models.zoo import get_model  # noqa: E402

BOARD = "nrf52840dk"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200, help="timed calls per configuration and firmware model")
    args = ap.parse_args(argv)
    cuts = get_model("digits_cnn").cut_points()
    when, load = datetime.now(timezone.utc).isoformat(timespec="seconds"), os.getloadavg()[0]
    rows = []
    for firmware in ("paper", "microtl-dse"):
        start = time.perf_counter()
        predict(Configuration("digits", "digits_cnn", cuts[0], 32, 200, 20), board=BOARD, firmware=firmware)
        first_s = time.perf_counter() - start
        for cut in cuts:
            config = Configuration("digits", "digits_cnn", cut, 32, 200, 20)
            predict(config, board=BOARD, firmware=firmware)
            start = time.perf_counter()
            for _ in range(args.calls):
                predict(config, board=BOARD, epochs_run=12.5, firmware=firmware)
            per_call_ms = (time.perf_counter() - start) / args.calls * 1e3
            print(f"{firmware:12s} {cut:8s} {per_call_ms:7.3f} ms per prediction (first call, fitting: {first_s:.2f} s)")
            rows.append({"date": when, "machine": platform.node(), "load": f"{load:.2f}", "board": BOARD,
                         "firmware": firmware, "cut": cut, "calls": args.calls,
                         "per_call_ms": f"{per_call_ms:.4f}", "first_call_s": f"{first_s:.3f}"})
    path = append_rows("predict_speed", rows)
    print(f"rows appended to {path.relative_to(ROOT)}; load average {load:.2f}")
    print(f"worst_call_ms={max(float(r['per_call_ms']) for r in rows):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
