"""Head-training time of one trial of the paper's size: models.head.train_heads (R repeats in lockstep, torch)
against the same work done the straightforward way (a PyTorch loop, one repeat after another), in the same run.

Trial: 500 drawn samples (450 train + 50 validation, vocabulary.configuration.validation_count) of 256-byte int8 features,
head 256 -> 32 -> 3 (ReLU), SGD lr 0.01, momentum 0.9, weight decay 1e-4, batch 8, 20 epochs, 50 repeats.
patience = epochs, so early stopping never ends a repeat early: every repeat runs all 20 epochs (the worst case;
with patience 5 the lockstep path stops when the last repeat stops, the loop per repeat). Both paths compute the
validation loss after every epoch and keep the best weights.

Features: synthetic but with real class structure: the 64 pixels of the real scikit-learn digits 0, 1, 2
(537 images) through a fixed random Gaussian projection to 256 values, ReLU, quantized to q7 int8 with the
power-of-two frac bits of the max (as models.quantize does). Each repeat draws its own 500 of the 537.

Targets (issue "fast trial evaluation", part 4a): trial <= 1 s wall on 2 cores, speedup >= 20x. trial_s is the
lockstep path on --threads torch threads (2: both cores); it is also timed on 1 thread (what a study worker uses).
The loop runs on --torch-threads (1, its faster setting). The machine may be shared: the load average is recorded.
Prints the figures, appends a row to benchmarks/results/trial_speed.csv; the last line is
`trial_s=<x> speedup=<y>`. Usage: .venv/bin/python benchmarks/trial_speed.py [--repeats 50] [--runs 3]
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_csv import append_rows  # noqa: E402 (benchmarks/ is the script's folder)

from models.features import Features, dequantize  # noqa: E402
from models.head import SGDParams, train_heads  # noqa: E402

SAMPLES, VAL, FEATURES, HIDDEN, CLASSES = 500, 50, 256, 32, 3


def make_features(seed: int = 0) -> tuple[Features, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    keep = y < CLASSES
    x, y = x[keep].astype(np.float32) / 16.0, y[keep].astype(np.int64)
    rng = np.random.default_rng(seed)
    projected = np.maximum(x @ rng.normal(0.0, 1.0 / math.sqrt(8.0), (64, FEATURES)).astype(np.float32), 0)
    frac = int(math.floor(math.log2(127.0 / float(projected.max()))))
    q = np.clip(np.floor(projected * 2.0 ** frac + 0.5), -128, 127).astype(np.int8)
    return Features(q, frac), y


def draws(y: np.ndarray, repeats: int, seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for r in range(repeats):
        idx = np.random.default_rng([seed, r]).permutation(len(y))[:SAMPLES]
        out.append((idx[:SAMPLES - VAL], idx[SAMPLES - VAL:]))
    return out


def lockstep(pool: Features, y: np.ndarray, picks, params: SGDParams) -> float:
    start = time.perf_counter()
    results = train_heads([pool.subset(t) for t, _ in picks], [y[t] for t, _ in picks],
                          [pool.subset(v) for _, v in picks], [y[v] for _, v in picks],
                          HIDDEN, CLASSES, params, list(range(len(picks))))
    seconds = time.perf_counter() - start
    assert all(r.epochs_run == params.epochs for r in results)
    return seconds


def torch_loop(pool: Features, y: np.ndarray, picks, params: SGDParams) -> float:
    """The straightforward way: one repeat after another, nn.Sequential + torch.optim.SGD, index batches."""
    import torch
    import torch.nn.functional as F

    x_all, y_all = torch.from_numpy(dequantize(pool)), torch.from_numpy(y)
    start = time.perf_counter()
    for r, (t, v) in enumerate(picks):
        torch.manual_seed(r)
        x_train, y_train = x_all[torch.from_numpy(t)], y_all[torch.from_numpy(t)]
        x_val, y_val = x_all[torch.from_numpy(v)], y_all[torch.from_numpy(v)]
        head = torch.nn.Sequential(torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(),
                                   torch.nn.Linear(HIDDEN, CLASSES))
        optimizer = torch.optim.SGD(head.parameters(), lr=params.lr, momentum=params.momentum,
                                    weight_decay=params.decay)
        best_loss, best_state, since_best = math.inf, None, 0
        for _ in range(params.epochs):
            order = torch.randperm(len(y_train))
            for s in range(0, len(y_train), params.batch):
                idx = order[s:s + params.batch]
                optimizer.zero_grad()
                F.cross_entropy(head(x_train[idx]), y_train[idx]).backward()
                optimizer.step()
            with torch.no_grad():
                loss = float(F.cross_entropy(head(x_val), y_val))
            if loss < best_loss:
                best_loss, since_best = loss, 0
                best_state = {k: p.clone() for k, p in head.state_dict().items()}
            else:
                since_best += 1
                if since_best >= params.patience:
                    break
        head.load_state_dict(best_state)
    return time.perf_counter() - start


def widen_csv(name: str, fields: list[str]) -> None:
    """Give an existing results file the columns added since it was started (older rows: empty cells)."""
    path = ROOT / "benchmarks" / "results" / f"{name}.csv"
    if not path.exists():
        return
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and list(rows[0]) == fields:
        return
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each path; the median is reported")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the lockstep path (trial_s)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch threads of the loop (1 was the faster setting for these tiny layers)")
    args = parser.parse_args()
    import torch

    params = SGDParams(lr=0.01, momentum=0.9, decay=1e-4, batch=8, epochs=20, patience=20)
    pool, y = make_features()
    picks = draws(y, args.repeats)
    load_before = os.getloadavg()[0]
    timed = {}
    for threads in dict.fromkeys([args.threads, 1]):
        torch.set_num_threads(threads)
        lockstep(pool, y, picks[:2], params)  # warm-up (imports, allocator, thread pool)
        timed[threads] = [lockstep(pool, y, picks, params) for _ in range(args.runs)]
    torch.set_num_threads(args.torch_threads)
    torch_loop(pool, y, picks[:1], params)
    slow = [torch_loop(pool, y, picks, params) for _ in range(args.runs)]
    fast, single = timed[args.threads], timed[1]
    trial_s, loop_s, trial_1 = statistics.median(fast), statistics.median(slow), statistics.median(single)
    speedup = loop_s / trial_s
    load = max(load_before, os.getloadavg()[0])
    print(f"features: {len(y)} real digits (0-2) -> random projection -> q7 int8 {FEATURES} B, "
          f"frac_bits {pool.frac_bits}")
    print(f"trial: {SAMPLES} samples ({SAMPLES - VAL} train + {VAL} val), head {FEATURES}->{HIDDEN}->{CLASSES}, "
          f"{params.epochs} epochs (no early stop), batch {params.batch}, {args.repeats} repeats")
    print(f"lockstep train_heads ({args.threads} threads): runs {', '.join(f'{s:.3f}' for s in fast)} s -> median "
          f"{trial_s:.3f} s (target <= 1 s: {'met' if trial_s <= 1 else 'MISSED'})")
    print(f"lockstep train_heads (1 thread): runs {', '.join(f'{s:.3f}' for s in single)} s -> median "
          f"{trial_1:.3f} s (speedup {loop_s / trial_1:.1f}x)")
    print(f"per-repeat torch loop ({args.torch_threads} thread): runs {', '.join(f'{s:.3f}' for s in slow)} s -> "
          f"median {loop_s:.3f} s ({loop_s / args.repeats * 1000:.0f} ms per repeat)")
    print(f"speedup {speedup:.1f}x (target >= 20x: {'met' if speedup >= 20 else 'MISSED'}); "
          f"load average {load:.2f} on {os.cpu_count()} cores (others' work slows both paths)")
    row = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
           "cores": os.cpu_count(), "repeats": args.repeats, "epochs": params.epochs, "samples": SAMPLES,
           "features": FEATURES, "hidden": HIDDEN, "classes": CLASSES, "torch_threads": args.torch_threads,
           "trial_s": round(trial_s, 4), "torch_loop_s": round(loop_s, 4), "speedup": round(speedup, 2),
           "lockstep_threads": args.threads, "trial_s_1thread": round(trial_1, 4),
           "speedup_1thread": round(loop_s / trial_1, 2), "load_avg": round(load, 2)}
    widen_csv("trial_speed", list(row))
    append_rows("trial_speed", [row])
    print(f"trial_s={trial_s:.3f} speedup={speedup:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
