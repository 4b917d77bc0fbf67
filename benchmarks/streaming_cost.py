"""Streaming (TinyOL) in the firmware cost models: the held-out error of the streaming runs and what adding them did
to the stored-mode fit.

Reads the qemu-an386 run records (default: the shipped cost_models/calibration/qemu-an386), then
- stored mode, in sample: the fit on the stored runs alone ("before": what the calibration was without streaming
  records) and on every run ("after"), each predicting the stored runs; worst and mean |error| per cost;
- streaming, held out: the fit on every run but the held-out streaming points (firmware/calibrate.py
  `Grid.streaming_configurations(holdout=True)`), predicting them: per cost (instructions per phase, deployed RAM,
  deployed flash) each run's error, with and without the training shape factor ("counts only": what a shape no
  streaming run was fitted on gets); and the streaming runs in sample.
Targets (issue 14): instructions within +-3%, RAM within 1%. Prints the figures and appends rows to
benchmarks/results/streaming_cost_v1.csv.

    .venv/bin/python benchmarks/streaming_cost.py [--records DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

COSTS = ("instructions.collection", "instructions.training", "instructions.evaluation", "deployed_ram",
         "deployed_flash")


def errors(cal, runs) -> dict[str, list[tuple[str, float | None]]]:
    from cost_models.microtl_dse.fit import predict_run

    out: dict[str, list] = {c: [] for c in COSTS}
    for r in runs:
        if r.cost in out:
            p = predict_run(cal, r)
            out[r.cost].append((r.key, None if p is None else p / r.value - 1))
    return out


def summary(errs: dict[str, list]) -> dict[str, tuple[int, int, float | None, float | None]]:
    """cost -> (n, unpredictable, mean |error|, worst |error|)"""
    out = {}
    for cost, pairs in errs.items():
        e = [abs(x) for _, x in pairs if x is not None]
        out[cost] = (len(e), len(pairs) - len(e), sum(e) / len(e) if e else None, max(e) if e else None)
    return out


def fmt(s) -> str:
    n, missing, mean, worst = s
    if not n:
        return f"n {n}, {missing} not predictable"
    return f"n {n:3d}, mean {mean:.3%}, worst {worst:.3%}" + (f", {missing} not predictable" if missing else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", default=str(ROOT / "cost_models" / "calibration" / "qemu-an386"))
    args = ap.parse_args()

    from cost_models.microtl_dse.fit import deployed_view, fit_firmware, record_files
    from cost_models.microtl_dse.runs import load_runs
    from vocabulary.run_records import run_key
    from firmware.calibrate import Grid
    from models.tasks import get_task
    from results_csv import append_rows

    files = record_files(Path(args.records))
    runs = deployed_view([r for p in files for r in load_runs(p)])
    stored = [r for r in runs if not r.config.streaming]
    streaming = [r for r in runs if r.config.streaming]
    if not streaming:
        raise SystemExit(f"{args.records}: no streaming runs (run the campaign's streaming points first)")
    held_prefixes = {run_key(c, get_task(c.task).classes, 0).rsplit("/t", 1)[0]
                     for c in Grid().streaming_configurations(holdout=True)}
    held = [r for r in streaming if r.key.rsplit("/t", 1)[0] in held_prefixes]
    board = runs[0].board
    before = fit_firmware(stored, board)
    after = fit_firmware(runs, board)
    held_keys = {r.key for r in held}
    fit = fit_firmware([r for r in runs if r.key not in held_keys], board)
    counts_only = dataclasses.replace(fit, shape_factors={})
    results = {
        "stored in sample, before (stored runs only)": summary(errors(before, stored)),
        "stored in sample, after (with streaming runs)": summary(errors(after, stored)),
        "streaming in sample": summary(errors(after, streaming)),
        "streaming held out": summary(errors(fit, held)),
        "streaming held out, counts only": summary(errors(counts_only, held)),
    }
    print(f"{len({r.key for r in stored})} stored and {len({r.key for r in streaming})} streaming runs in "
          f"{', '.join(p.name for p in files)}; {len({r.key for r in held})} streaming runs held out")
    rows = []
    for what, s in results.items():
        print(what)
        for cost in COSTS:
            print(f"  {cost:26s} {fmt(s[cost])}")
            n, missing, mean, worst = s[cost]
            rows.append({"date": dt.date.today().isoformat(), "machine": platform.node(), "board": board,
                         "records": ",".join(p.name for p in files), "set": what, "cost": cost, "n": n,
                         "not_predictable": missing, "mean_abs_err": "" if mean is None else mean,
                         "worst_abs_err": "" if worst is None else worst})
    print("streaming held out, per run (model / counts only):")
    model, bare = errors(fit, held), errors(counts_only, held)
    for cost in COSTS:
        for (key, e), (_, e0) in zip(model[cost], bare[cost]):
            show = "-" if e is None else f"{e:+.3%}"
            print(f"  {cost:26s} {key}: {show} / {'-' if e0 is None else f'{e0:+.3%}'}")
    print("targets: instructions within +-3%, RAM within 1%")
    print(f"rows appended to {append_rows('streaming_cost_v1', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
