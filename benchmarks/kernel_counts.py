"""Per-kernel fit quality of the sequence kernels' counts model: nn_conv1d_q7, nn_lstm_q7 and nn_gru_q7 over a grid
of shapes beyond the zoo's (firmware/kernel_bench.py), each call's instructions measured on qemu-an386, the counts
of cost_models/firmware_rnn.py fitted per kernel by NNLS and checked leaving one shape out.

Prints per kernel the fitted instructions per count and the in-sample and leave-one-shape-out errors; appends
rows (shape, measured instructions, leave-one-out error, provenance) to benchmarks/results/kernel_counts.csv.

    .venv/bin/python benchmarks/kernel_counts.py
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    from firmware import kernel_bench as kb
    from results_csv import append_rows

    shapes = kb.default_grid()
    with tempfile.TemporaryDirectory(prefix="kernel-bench-") as tmp:
        runs = kb.measure(shapes, tmp)
    loo: dict = {}
    print(f"{len(runs)} kernel calls measured on qemu-an386 ({runs[0].toolchain.split(chr(10))[0]}; "
          f"{runs[0].emulator})")
    for kind in kb.KINDS:
        rs = [r for r in runs if r.shape.kind == kind]
        coef = kb.fit(rs)
        fit_err = [kb.predict(coef, r.shape) / r.instructions - 1 for r in rs]
        errs = kb.leave_one_out(rs)
        loo.update({r.shape: e for r, e in errs})
        a = [abs(e) for _, e in errs]
        print(f"  {kind:6s} {len(rs):3d} shapes: in-sample worst {max(map(abs, fit_err)):.3%}; leave one shape out "
              f"mean {sum(a) / len(a):.3%}, worst {max(a):.3%}, within +-1% {sum(e <= 0.01 for e in a)}/{len(a)}")
        print("         instructions per count: " + ", ".join(f"{k} {v:.2f}" for k, v in coef.items()))
    path = append_rows("kernel_counts", kb.rows(runs, loo, dt.date.today().isoformat()))
    print(f"rows appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
