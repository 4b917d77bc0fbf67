"""Search efficiency: how much of the exhaustive Pareto front NSGA-II and TPE find after 10%, 25% and 50% of a grid's
size, against random search.

The design space (digits, 256 grid points: 4 cuts x 4 head sizes x 4 sample counts x 2 epoch budgets x 2 learning
rates, 3 repeats each) is evaluated once, in full, with the real models and cost models; the values are cached in
a CSV (keyed by the space's study file). The samplers - built exactly as `dse run` builds them - are then replayed
against the cached values. Quality is the hypervolume of (1 - accuracy, energy, RAM), each normalized to [0, 1]
over the grid, reference point 1.1 in each; the ratio is to the hypervolume of the whole grid (the exhaustive
front). Board limits are ignored (every grid point fits the board).
Writes benchmarks/results/search_efficiency.csv (appended) and search_efficiency.png; the last line prints
`hv_ratio_at_10pct=<x>` for the best sampler (mean over its seeds).
Usage: .venv/bin/python benchmarks/search_efficiency.py [--seeds 5] [--cache FILE]
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from results_csv import RESULTS, append_rows

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPACE = """
[study]
name = "efficiency"
trials = 256
repeats = 3
seed = 0
sampler = "random"

[task]
name = "digits"

[model]
name = "digits_cnn"

[board]
name = "nrf52840dk"

[space]
cut = ["conv1", "conv2", "pool2", "fc1"]
hidden = [0, 8, 16, 32]
samples = [20, 60, 120, 240]
epochs = [10, 30]
lr = [0.01, 0.05]
batch = 8
momentum = 0.9
decay = 1e-4
patience = 5

[objectives]
accuracy = "maximize"
energy = "minimize"
ram = "minimize"
"""
BUDGETS = (0.10, 0.25, 0.50)
SAMPLERS = ("random", "nsga2", "tpe")


def grid_points(spec) -> list[dict]:
    names = list(spec.space.params)
    return [dict(zip(names, combo)) for combo in itertools.product(*(spec.space.params[n].grid() for n in names))]


def evaluate_grid(spec, cache: Path):
    """Objective values (rows in grid order, study-file objective order) of every grid point; cached in `cache`."""
    import pandas as pd

    varying = list(spec.space.varying())
    objectives = [o.name for o in spec.objectives]
    if cache.is_file():
        table = pd.read_csv(cache)
        print(f"grid values from the cache {cache} ({len(table)} points)", flush=True)
        return table, varying, objectives
    from tqdm import tqdm

    from dse.search.evaluate import Evaluator

    evaluator = Evaluator(spec)
    evaluator.prepare(progress=lambda m: print(m, flush=True))
    rows = []
    start = time.perf_counter()
    for values in tqdm(grid_points(spec), desc="grid", unit="point", file=sys.stderr):
        result = evaluator(spec.configuration(values))
        rows.append({**{n: values[n] for n in varying},
                     **{o.name: float(o.measure.get(result)) for o in spec.objectives}})
    table = pd.DataFrame(rows)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, cache)
    print(f"grid evaluated in {time.perf_counter() - start:.0f} s; cached in {cache}", flush=True)
    return table, varying, objectives


def as_minimized(table, spec) -> np.ndarray:
    """Objective values as a minimization problem, normalized to [0, 1] over the grid."""
    cols = []
    for o in spec.objectives:
        v = table[o.name].to_numpy(dtype=float)
        v = -v if o.direction == "maximize" else v
        cols.append((v - v.min()) / (v.max() - v.min() or 1.0))
    return np.column_stack(cols)


def replay(spec, sampler_name: str, seed: int, lookup: dict, values: np.ndarray, varying: list[str],
           budget: int) -> list[int]:
    """Row indices of the grid points the sampler proposes, in order, for `budget` trials."""
    import optuna

    from dse.search.optimize import make_sampler

    sampler = make_sampler(replace(spec, sampler=sampler_name), seed)
    study = optuna.create_study(directions=spec.directions, sampler=sampler)
    chosen: list[int] = []

    def objective(trial):
        proposed = spec.space.propose(trial)
        row = lookup[tuple(proposed[n] for n in varying)]
        chosen.append(row)
        return tuple(float(v) for v in values[row])

    study.optimize(objective, n_trials=budget)
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per sampler (default 5)")
    parser.add_argument("--cache", type=Path, help="grid values CSV (default: in the microtl-dse cache)")
    args = parser.parse_args()

    import optuna

    from dse.reports.hypervolume import hypervolume
    from dse.study.file import parse_study

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    spec = parse_study(SPACE, ROOT / "benchmarks" / "efficiency.toml")
    key = hashlib.sha256(SPACE.encode()).hexdigest()[:16]
    base = Path(os.environ.get("MICROTL_CACHE", Path.home() / ".cache" / "microtl-dse"))
    cache = args.cache or base / "search_efficiency" / f"grid-{key}.csv"
    table, varying, _ = evaluate_grid(spec, cache)
    size = len(table)
    lookup = {tuple(_plain(table.loc[i, n]) for n in varying): i for i in range(size)}
    values = table[[o.name for o in spec.objectives]].to_numpy(dtype=float)
    points = as_minimized(table, spec)
    ref = np.full(points.shape[1], 1.1)
    exhaustive = hypervolume(points, ref)
    print(f"grid: {size} points; exhaustive hypervolume {exhaustive:.4f}", flush=True)

    budgets = [max(1, round(b * size)) for b in BUDGETS]
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows, ratios = [], {}
    for name in SAMPLERS:
        for seed in range(args.seeds):
            start = time.perf_counter()
            chosen = replay(spec, name, seed, lookup, values, varying, budgets[-1])
            took = time.perf_counter() - start
            for pct, n in zip(BUDGETS, budgets):
                hv = hypervolume(points[chosen[:n]], ref)
                ratios.setdefault(name, {}).setdefault(pct, []).append(hv / exhaustive)
                rows.append({"date": date, "host": platform.node(), "grid": size, "sampler": name, "seed": seed,
                             "budget_pct": int(100 * pct), "trials": n, "distinct": len(set(chosen[:n])),
                             "hv": round(hv, 6), "hv_ratio": round(hv / exhaustive, 4),
                             "replay_s": round(took, 2)})
    rows.append({"date": date, "host": platform.node(), "grid": size, "sampler": "exhaustive", "seed": "",
                 "budget_pct": 100, "trials": size, "distinct": size, "hv": round(exhaustive, 6), "hv_ratio": 1.0,
                 "replay_s": ""})
    path = append_rows("search_efficiency", rows)

    print(f"{'sampler':<8} " + " ".join(f"{int(100 * p):>3}% ({n:>3} trials)" for p, n in zip(BUDGETS, budgets)))
    for name in SAMPLERS:
        cells = []
        for pct in BUDGETS:
            r = np.array(ratios[name][pct])
            cells.append(f"{r.mean():.3f} [{r.min():.3f}-{r.max():.3f}]")
        print(f"{name:<8} " + " ".join(f"{c:>17}" for c in cells))
    plot(ratios, budgets, size, RESULTS / "search_efficiency.png", args.seeds)
    print(f"wrote {path} and {RESULTS / 'search_efficiency.png'} (hypervolume ratio to the exhaustive front; "
          f"mean [min-max] over {args.seeds} seeds)")
    best = max(("nsga2", "tpe", "random"), key=lambda n: np.mean(ratios[n][BUDGETS[0]]))
    print(f"best sampler at 10%: {best}")
    print(f"hv_ratio_at_10pct={np.mean(ratios[best][BUDGETS[0]]):.3f}")
    return 0


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def plot(ratios: dict, budgets: list[int], size: int, path: Path, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, marker in zip(SAMPLERS, "os^"):
        r = [np.array(ratios[name][p]) for p in BUDGETS]
        mean = [x.mean() for x in r]
        ax.plot(budgets, mean, marker=marker, label=name)
        ax.fill_between(budgets, [x.min() for x in r], [x.max() for x in r], alpha=0.15)
    ax.axhline(1.0, color="k", linestyle="--", linewidth=1, label=f"exhaustive ({size} points)")
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume / exhaustive front's")
    ax.set_title(f"Search efficiency on a {size}-point digits grid ({seeds} seeds; band: min-max)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    RESULTS.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=RESULTS, suffix=".png", delete=False) as fh:
        fig.savefig(fh.name, dpi=120, bbox_inches="tight")
    os.replace(fh.name, path)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
