"""Per-kernel fit quality of the frozen layers' counts model: every kernel of the zoo's frozen layers (nn_conv1d_q7,
nn_lstm_q7, nn_gru_q7, nn_conv2d_q7, nn_maxpool2d_q7, nn_fc_q7, nn_relu_q7) alone over a grid of shapes beyond the
zoo's (firmware/kernel_bench.py), each call's instructions measured on qemu-an386, the counts the whole-firmware cost
model uses (cost_models/microtl_dse/rnn_counts.py, microtl_dse/model.py's frozen counts) fitted per kernel by NNLS and checked
leaving one shape out (cost_models/microtl_dse/kernel_counts.py).

Prints per kernel the fitted instructions per count and the in-sample and leave-one-shape-out errors, and ReLU's
instructions on mixed, non-negative and negative data. Appends rows (kernels, shape, measured instructions,
leave-one-out error, provenance) to benchmarks/results/kernel_counts_v4.csv (v4: the portable and the Cortex-M4 DSP
kernels, cost_models/microtl_dse/dsp_counts.py; v3: portable only; v2: before the cost model counted nn_dot's unrolled-loop
and tail entries and the output rows).

    .venv/bin/python benchmarks/kernel_counts.py [--kernels portable|fast|both]
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


def _report(kc, rs, kernels: str) -> dict:
    """Print one kind's fit and leave-one-out figures; return {shape: left-out error}."""
    coef = kc.fit(rs, kernels)
    fit_err = [kc.predict(coef, r.shape, kernels) / r.instructions - 1 for r in rs]
    errs = kc.leave_one_out(rs, kernels)
    a = [abs(e) for _, e in errs]
    worst = max(errs, key=lambda x: abs(x[1]))[0].shape.name
    print(f"in-sample worst {max(map(abs, fit_err)):.3%}; leave one shape out mean {sum(a) / len(a):.3%}, "
          f"worst {max(a):.3%} ({worst}), within +-1% {sum(e <= 0.01 for e in a)}/{len(a)}")
    print("             instructions per count: " + ", ".join(f"{k} {v:.2f}" for k, v in coef.items() if v))
    return {r.shape: e for r, e in errs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernels", choices=("portable", "fast", "both"), default="both",
                    help="the portable C kernels (the host's), the Cortex-M4 DSP kernels, or both (default)")
    args = ap.parse_args()
    from cost_models.microtl_dse import kernel_counts as kc
    from firmware import kernel_bench as kb
    from results_csv import append_rows

    for kernels in (("portable", "fast") if args.kernels == "both" else (args.kernels,)):
        # the DSP kernels have more counts (pixel pairs, channel pairs, groups of 4 and tails): more shapes
        shapes = kb.default_grid() + kb.relu_sign_grid() + (kb.fast_grid() if kernels == "fast" else [])
        with tempfile.TemporaryDirectory(prefix="kernel-bench-") as tmp:
            runs = kb.measure(shapes, tmp, kernels=kernels)
        loo: dict = {}
        print(f"{kernels} kernels: {len(runs)} calls measured on qemu-an386 "
              f"({runs[0].toolchain.split(chr(10))[0]}; {runs[0].emulator})")
        for kind in kb.KINDS:
            rs = [r for r in runs if r.shape.kind == kind and r.shape.sign == 0]
            print(f"  {kind:9s} {len(rs):3d} shapes, cost model's counts: ", end="")
            loo.update(_report(kc, rs, kernels))
        by_shape = {r.shape: r.instructions for r in runs}
        for n in sorted({s.in_dim for s in kb.relu_sign_grid()}):
            mixed, pos, neg = (by_shape.get(kb.KernelShape.relu(n, sign)) for sign in (0, 1, -1))
            print(f"  relu/{n}: mixed signs {mixed}, all >= 0 {pos}, all < 0 {neg} instructions")
        rows = [{**row, "kernels": kernels} for row in kb.rows(runs, loo, dt.date.today().isoformat())]
        path = append_rows("kernel_counts_v4", rows)
        print(f"rows appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
