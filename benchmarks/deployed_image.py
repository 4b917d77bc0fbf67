"""The deployed image against Table III, and the paper's CIFAR-3 configuration validated end to end.

1. Builds the deployed image (firmware/c/deployed.c: frozen network to the cut, MicroTL runtime, one sensor input
   buffer, no stored inputs) of the paper's two Table III configurations - CIFAR-3 cut conv3 and HAR-3b cut gru3,
   head 32, batch 8 - for the nrf52840 platform, and prints its flash and static RAM from the ELF next to Table
   III's flash (98 kB CIFAR-3, 123 kB HAR-3b) and to what the cost model predicts.
2. Validates CIFAR-3 conv3 with --samples (default 500) on qemu-an386, the paper's head (32) and the heads of
   --hidden (default 8; a smaller head whose trainer fits beside 500 samples while the trainer keeps 12 B per
   head parameter): generate, build the deployed and the validation ELF, run with the inputs fed from the host
   through semihosting, parse; prints the status (or "does not fit: RAM over by N bytes", measured by the linker),
   the board's accuracy against the replay of its arithmetic, the deployed RAM and flash measured vs predicted, the
   harness's share, and the turnaround (target: 60 s or less).
Data: generated files in CIFAR-10's and UCI HAR's published layouts (firmware/calibrate_cifar.py,
firmware/calibrate_rnn.py), not the real data sets: the figures are sizes and times, not accuracies to quote.
Appends to benchmarks/results/deployed_image.csv; ends with `turnaround_s=<x>`.
Usage: .venv/bin/python benchmarks/deployed_image.py [--samples 500] [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_csv import append_rows  # noqa: E402 (benchmarks/ is the script's folder)

TURNAROUND_TARGET_S = 60.0
TABLE3_FLASH_KB = {"cifar3": 98, "har3b": 123}  # Table III, kB = 1000 B (paper_table3.csv)
TRAIN_PER_CLASS = {"cifar3": 40, "har3b": 200}  # generated files: >= 200 training samples per class (500 balanced)
TEST_PER_CLASS = 20


def configuration(task: str, samples: int, hidden: int | None = None):
    """The paper's setup as its study file fixes it (studies/paper_<task>.toml, what `dse paper` prices); `hidden`
    replaces its head width."""
    from dse.commands.paper import load_setup

    config = load_setup(task).configuration(samples)
    return config if hidden is None else config.__class__(**{**config.to_dict(), "hidden": hidden})


def data_path(task: str, work: Path) -> Path:
    from firmware.calibrate_cifar import generated_cifar10
    from firmware.calibrate_rnn import generated_uci_har

    if task == "cifar3":
        return generated_cifar10(work / "cifar", train_per_class=TRAIN_PER_CLASS[task],
                                 test_per_class=TEST_PER_CLASS)
    return generated_uci_har(work / "har", train_per_class=TRAIN_PER_CLASS[task], test_per_class=3)


def deployed_sizes(task: str, samples: int, work: Path) -> dict:
    from cost_models.predict import predict
    from firmware.build import DoesNotFit, build
    from firmware.codegen import generate

    config = configuration(task, samples)
    gen = generate(config, work / f"{task}-{samples}" / "gen", data_path=data_path(task, work))
    p = predict(config, "nrf52840dk", firmware="microtl-dse")
    row = {"task": task, "cut": config.cut, "hidden": config.hidden, "samples": samples, "image": "deployed",
           "platform": "nrf52840", "flash_bytes": None, "static_ram_bytes": None, "status": "ok",
           "flash_predicted": p.flash_total, "ram_predicted": p.ram_total, "table3_flash_kb": TABLE3_FLASH_KB[task]}
    try:
        elf = build(gen, "cortex-m4", work / f"{task}-{samples}" / "nrf", platform="nrf52840", image="deployed")
    except DoesNotFit as exc:
        return {**row, "status": str(exc)}
    return {**row, "flash_bytes": elf.flash_bytes, "static_ram_bytes": elf.static_ram_bytes}


def validate_cifar(samples: int, hidden: int | None, work: Path) -> dict:
    from cost_models.predict import predict
    from firmware.boards import get_board
    from firmware.validate import validate
    from vocabulary.validation_record import Predicted

    config = configuration("cifar3", samples, hidden)
    path = data_path("cifar3", work)
    test = 3 * TEST_PER_CLASS
    p = predict(config, "qemu-an386", test_inputs=test)
    predicted = Predicted(board="qemu-an386", ram_total=p.ram_total, flash_total=p.flash_total,
                          harness_ram=p.harness_ram, harness_flash=p.harness_flash,
                          instructions={k: v for k, v in p.instructions.items() if v is not None},
                          instructions_board="qemu-an386")
    board = get_board("qemu-an386")
    start = time.perf_counter()
    record = validate(config, board, work / f"validate-{samples}-h{config.hidden}", predicted, study="benchmark",
                      trial=0,
                      data_path=path, timeout_s=600.0)
    total = time.perf_counter() - start
    m, e = record.measured, record.errors
    return {"task": "cifar3", "cut": config.cut, "hidden": config.hidden, "batch": config.batch, "samples": samples,
            "status": record.status,
            "reason": record.reason, "test": m.test, "accuracy": m.accuracy, "replay_accuracy":
            record.predicted.replay_accuracy, "epochs_run": m.epochs_run,
            "replay_epochs_run": record.predicted.replay_epochs_run, "features_match": m.features_match,
            "deployed_flash": m.deployed_flash_bytes, "deployed_peak_ram": m.deployed_peak_ram_bytes,
            "flash_predicted": p.flash_total, "ram_predicted": p.ram_total,
            "flash_error": e.get("flash_total"), "ram_error": e.get("ram_total"),
            "harness_flash": m.harness_flash_bytes, "harness_ram": m.harness_ram_bytes,
            "validation_flash": m.flash_bytes, "validation_peak_ram": m.peak_ram_bytes,
            **{f"{k}_s": round(m.wall_s[k], 2) if k in m.wall_s else None for k in ("generate", "build", "run")},
            "turnaround_s": round(total, 2),
            "notes": " | ".join(record.notes)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--hidden", type=int, nargs="*", default=[8], help="head widths to validate beside the "
                                                                           "paper's 32")
    parser.add_argument("--work", help="keep generated data and builds here (default: a temporary folder)")
    args = parser.parse_args()
    stamp = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "host": platform.node(),
             "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        rows = []
        for task in ("cifar3", "har3b"):
            for n in (100, args.samples):
                r = deployed_sizes(task, n, work)
                rows.append({**stamp, **r})
                if r["flash_bytes"] is None:
                    print(f"{task} cut {r['cut']} n={n}: deployed image {r['status']} (whole-device RAM predicted "
                          f"{r['ram_predicted'] / 1000:.1f} kB)", flush=True)
                    continue
                verdict = "at or below" if r["flash_bytes"] <= 1000 * r["table3_flash_kb"] else "ABOVE"
                print(f"{task} cut {r['cut']} n={n}: deployed flash {r['flash_bytes'] / 1000:.1f} kB ({verdict} "
                      f"Table III's {r['table3_flash_kb']} kB; predicted {r['flash_predicted'] / 1000:.1f} kB), "
                      f"static RAM {r['static_ram_bytes'] / 1000:.1f} kB (whole-device RAM predicted "
                      f"{r['ram_predicted'] / 1000:.1f} kB)", flush=True)
        checks = [validate_cifar(args.samples, h, work) for h in (None, *args.hidden)]
    append_rows("deployed_image", [{**stamp, **r} for r in rows])
    append_rows("deployed_image_validation", [{**stamp, **v} for v in checks])
    for v in checks:
        print(f"cifar3 conv3 head {v['hidden']} batch {v['batch']} n={args.samples} on qemu-an386: {v['status']}"
              f"{' (' + v['reason'] + ')' if v['reason'] else ''}")
        if v["status"] == "ok":
            print(f"  accuracy {v['accuracy']:.4f} on {v['test']} test inputs, replay {v['replay_accuracy']:.4f}; "
                  f"epochs {v['epochs_run']} (replay {v['replay_epochs_run']}); features match: {v['features_match']}")
            print(f"  deployed flash {v['deployed_flash']} B (predicted {v['flash_predicted']}, "
                  f"{100 * v['flash_error']:+.2f}%), deployed peak RAM {v['deployed_peak_ram']} B (predicted "
                  f"{v['ram_predicted']}, {100 * v['ram_error']:+.2f}%)")
            print(f"  harness share: flash {v['harness_flash']} B, static RAM {v['harness_ram']} B; validation ELF "
                  f"flash {v['validation_flash']} B, peak RAM {v['validation_peak_ram']} B")
        else:
            print(f"  predicted deployed RAM {v['ram_predicted']} B, flash {v['flash_predicted']} B")
        if v["notes"]:
            print(f"  notes: {v['notes']}")
        print(f"  generate {v.get('generate_s')} s, build {v.get('build_s')} s, run {v.get('run_s')} s, total "
              f"{v['turnaround_s']} s (target <= {TURNAROUND_TARGET_S:g} s)")
    ok = [v for v in checks if v["status"] == "ok"]
    print(f"turnaround_s={max((v['turnaround_s'] for v in ok), default=float('nan')):.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
