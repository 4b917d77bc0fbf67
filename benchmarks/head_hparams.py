"""Choose the head's unpublished hyper-parameters (lr, momentum, decay, patience) of a paper study on validation
data only, and print the lr rule that holds across feature scales.

Procedure (the one the paper study files cite):
1. Prepare the study's network as `dse paper` does (pretrained on the source part, int8, features at the cut).
2. Split the *target pool* (the official training part of the target classes) once, stratified with a fixed seed,
   into a sweep part (2/3) and a held-out part (1/3). The target test set is never read.
3. lr is searched as lr = eta / s, where s = mean over the sweep part of |x|^2, the squared norm of one dequantized
   feature vector: plain SGD moves a first-layer pre-activation by lr * grad * |x|^2 per sample, so a fixed eta
   gives the same step size whatever the cut's scale (gru3 features lie in [-1, 1]; CIFAR conv3's reach |x| = 38,
   where lr 0.01 killed the hidden ReLUs).
4. For every candidate (eta, momentum, decay, patience) and every sample count of the study, `--draws` balanced draws
   from the sweep part train a head with the study's hidden size, batch and epochs, early-stopped on the draw's own
   validation split (as a MicroTL run does), and are scored on the held-out part.
5. Chosen: the highest mean held-out accuracy over all counts and draws; the CSV keeps every candidate with its
   worst draw, so a recipe that loses a class on some draw is visible.
Prints the table and the choice; appends rows to benchmarks/results/head_hparams.csv.
Usage: .venv/bin/python benchmarks/head_hparams.py --task har3b [--data PATH] [--draws 10]
"""
from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from results_csv import append_rows

ROOT = Path(__file__).resolve().parents[1]
SPLIT_SEED = 20240101
ETAS = (0.03, 0.1, 0.3, 1.0, 3.0)
MOMENTA = (0.0, 0.9)
DECAYS = (0.0, 1e-4)
PATIENCES = (5, 10)


def feature_scale(x: np.ndarray) -> float:
    """Mean squared norm of the dequantized feature vectors."""
    return float(np.mean(np.sum(x.astype(np.float64) ** 2, axis=1)))


def sweep_split(y_pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(y_pool))
    sweep, held = train_test_split(idx, test_size=1 / 3, stratify=y_pool, random_state=SPLIT_SEED)
    return np.sort(sweep), np.sort(held)


def evaluate(pool, y_pool, sweep, held, counts, draws, hidden, classes, params, seed) -> list[float]:
    """Held-out accuracies of `draws` heads per sample count, each trained on a draw of the sweep part."""
    from models.data import draw_samples
    from models.features import dequantize
    from models.head import accuracy, train_heads

    x_held, y_held = dequantize(pool.subset(held)), y_pool[held]
    y_sweep = y_pool[sweep]
    out = []
    for n in counts:
        picks = [draw_samples(y_sweep, n, seed * 1000 + n * 7 + r) for r in range(draws)]
        results = train_heads([pool.subset(sweep[t]) for t, _ in picks], [y_sweep[t] for t, _ in picks],
                              [pool.subset(sweep[v]) for _, v in picks], [y_sweep[v] for _, v in picks],
                              hidden, classes, params, [seed * 1000 + r for r in range(draws)])
        out += [accuracy(r.weights, x_held, y_held) for r in results]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=("cifar3", "har3b"), help="the paper study "
                                                                                  "studies/paper_<task>.toml")
    parser.add_argument("--data", default=None, help="the task's download (default: as the study finds it), or "
                                                     "'generated' for cifar3: generated files in CIFAR-10's layout "
                                                     "(300 images per class, brightness-coded; not CIFAR-10)")
    parser.add_argument("--draws", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from dse.commands.paper import load_setup
    from models.feature_cache import cached_features, weights_hash
    from models.features import dequantize
    from models.head import SGDParams
    from models.simulate import prepare

    torch.set_num_threads(1)
    setup = load_setup(args.task)
    if args.data == "generated":
        from firmware.calibrate_cifar import generated_cifar10

        if args.task != "cifar3":
            raise SystemExit("--data generated: only for cifar3")
        args.data = str(generated_cifar10(ROOT / "benchmarks" / "results" / "generated-cifar10", train_per_class=60))
    start = time.perf_counter()
    prep = prepare(setup.task, setup.model, setup.scheme, args.data, cuts=(setup.cut,), progress=print)
    pool = cached_features(prep.qmodel, weights_hash(prep.pretrained.network), prep.data, "target_pool", setup.cut)
    y_pool = prep.data.target_pool.y
    sweep, held = sweep_split(y_pool)
    counts = tuple(n for n in setup.samples if n <= len(sweep) * 0.9)
    scale = feature_scale(dequantize(pool.subset(sweep)))
    print(f"{setup.task} {setup.model} cut {setup.cut}: data {prep.data.provenance}")
    print(f"target pool {len(y_pool)}: sweep part {len(sweep)}, held-out part {len(held)}; counts {counts}; "
          f"feature scale mean |x|^2 = {scale:.4g} (frac bits {pool.frac_bits})")
    base = SGDParams(batch=setup.batch, epochs=setup.epochs)
    rows = []
    for eta, momentum, decay, patience in itertools.product(ETAS, MOMENTA, DECAYS, PATIENCES):
        params = replace(base, lr=eta / scale, momentum=momentum, decay=decay, patience=patience)
        acc = evaluate(pool, y_pool, sweep, held, counts, args.draws, setup.hidden, prep.data.target_classes,
                       params, setup.seed)
        rows.append({"task": setup.task, "model": setup.model, "cut": setup.cut, "hidden": setup.hidden,
                     "feature_scale": round(scale, 6), "eta": eta, "lr": float(f"{eta / scale:.4g}"),
                     "momentum": momentum, "decay": decay, "patience": patience, "draws": args.draws,
                     "counts": " ".join(map(str, counts)), "mean": round(float(np.mean(acc)), 5),
                     "worst": round(float(np.min(acc)), 5)})
        print(f"eta {eta:<5g} lr {eta / scale:<9.4g} momentum {momentum:<4g} decay {decay:<7g} patience "
              f"{patience:<3d} held-out mean {100 * np.mean(acc):5.1f}%  worst {100 * np.min(acc):5.1f}%",
              flush=True)
    best = max(rows, key=lambda r: (r["mean"], r["worst"]))
    print(f"chosen: lr {best['lr']} (eta {best['eta']} / {scale:.4g}), momentum {best['momentum']}, decay "
          f"{best['decay']}, patience {best['patience']}: held-out mean {100 * best['mean']:.1f}%, worst "
          f"{100 * best['worst']:.1f}%  ({time.perf_counter() - start:.0f} s)")
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for row in rows:
        row.update(chosen=row is best, date=stamp, host=platform.node(), data=prep.data.provenance)
    print(append_rows("head_hparams", rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
