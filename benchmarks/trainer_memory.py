"""Trainer RAM of our firmware (everything the MicroTL runtime allocates besides the sample store and the frozen
network's arena) per head parameter, for the paper's setups: CIFAR-3 (cifar_cnn cut conv3, head 256-32-3) and
HAR-3b (har_rnn cut gru3, head 258-32-3), 600 samples, over momentum 0.9 / 0, batch 8 / 1, restore_best on / off.

Measured: firmware/c/microtl.c compiled for the Cortex-M4 as the firmware build does, with the configuration's
dse_model.h constants and a work region of MT_TRAIN_WORK_BYTES as harness.c declares it; the sizes of the objects'
symbols (arm-none-eabi-nm -S): head weights (mt_params), the work region, mt_predict's activations. Modelled:
cost_models.microtl_dse.model's RAM terms of the same configuration (they must agree byte for byte).
Targets (issue 11): at most 8 B per parameter + 2 KB with momentum and restore_best off; at most 4 B per parameter
+ 2 KB at momentum 0, batch 1; restore_best adds 4 B per parameter.
Prints a table, appends rows to benchmarks/results/trainer_memory.csv; the last line is key=value figures.
Usage: .venv/bin/python benchmarks/trainer_memory.py
"""
from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_csv import append_rows  # noqa: E402 (benchmarks/ is the script's folder)

from cost_models.microtl_dse import model as fm  # noqa: E402
from cost_models.workload import workload_from_config  # noqa: E402
from firmware.build import ARM_CC, C_DIR, COMMON_FLAGS, M4_FLAGS  # noqa: E402
from firmware.codegen import c_float  # noqa: E402
from vocabulary.configuration import Configuration  # noqa: E402

ARM_NM = "arm-none-eabi-nm"
SAMPLES, CLASSES = 600, 3
SETUPS = {"cifar3": ("cifar3", "cifar_cnn", "conv3"), "har3b": ("har3b", "har_rnn", "gru3")}
VARIANTS = [(0.9, 8, False), (0.9, 8, True), (0.0, 8, False), (0.0, 1, False), (0.0, 1, True), (0.9, 1, False)]
# symbols of the trainer (the sample store mt_store is not trainer memory; the frozen arena is codegen's)
TRAINER_SYMBOLS = ("mt_params", "train_work", "mt_pred_h", "mt_pred_z")

STUB_C = """#include "dse_model.h"
#include "microtl.h"
static uint32_t train_work[MT_TRAIN_WORK_BYTES / 4];  /* as harness.c declares it */
uint32_t bench(const uint8_t *labels, const mt_feature_t *f)
{
    mt_train_result r;
    mt_train(labels, &r, train_work);
    return mt_predict(f) + r.epochs_run;
}
"""


def _header(c: Configuration, w) -> str:
    return "\n".join([
        "#include <stdint.h>",
        f"#define DSE_N_SAMPLES {w.samples}u", f"#define DSE_N_TRAIN {w.train_samples}u",
        f"#define DSE_N_VAL {w.val_samples}u", f"#define DSE_FEATURE {w.feature_elements}u",
        "#define DSE_FEATURE_BITS 8", f"#define DSE_FEATURE_BYTES {w.feature_bytes}u",
        "#define DSE_FEATURE_SCALE 0x1p-4f", f"#define DSE_HIDDEN {c.hidden}u", f"#define DSE_CLASSES {CLASSES}u",
        f"#define DSE_BATCH {c.batch}u", f"#define DSE_EPOCHS {c.epochs}u", f"#define DSE_PATIENCE {c.patience}u",
        f"#define DSE_LR {c_float(c.lr)}", f"#define DSE_MOMENTUM {c_float(c.momentum)}",
        f"#define DSE_DECAY {c_float(c.decay)}", f"#define DSE_HAS_MOMENTUM {int(c.momentum != 0)}",
        f"#define DSE_RESTORE_BEST {int(c.restore_best)}", "#define DSE_HEAD_SEED 1u", ""])


def measured_symbols(c: Configuration, w, tmp: Path) -> dict[str, int]:
    """Sizes of the trainer's symbols in the Cortex-M4 objects of this configuration."""
    (tmp / "dse_model.h").write_text(_header(c, w))
    (tmp / "bench.c").write_text(STUB_C)
    sizes: dict[str, int] = {}
    for src in (C_DIR / "microtl.c", tmp / "bench.c"):
        obj = tmp / (src.stem + ".o")
        subprocess.run([ARM_CC, *M4_FLAGS, *COMMON_FLAGS, f"-I{tmp}", f"-I{C_DIR}", "-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True)
        out = subprocess.run([ARM_NM, "-S", str(obj)], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[2].lower() in "bdc" and parts[3] in TRAINER_SYMBOLS:
                sizes[parts[3]] = int(parts[1], 16)
    return sizes


def main() -> int:
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows, worst = [], {}
    print(f"{'setup':7s} {'mom':>4s} {'B':>2s} {'best':>4s} {'params':>6s} {'weights':>7s} {'update':>7s} "
          f"{'best':>7s} {'work':>7s} {'predict':>7s} {'trainer':>7s} {'B/param':>7s} {'limit':>7s}  model")
    with tempfile.TemporaryDirectory() as tmp_dir:
        for name, (task, model, cut) in SETUPS.items():
            for momentum, batch, restore in VARIANTS:
                c = Configuration(task, model, cut, hidden=32, samples=SAMPLES, epochs=20, batch=batch,
                                  momentum=momentum, restore_best=restore)
                w = workload_from_config(c, CLASSES)
                d = Path(tmp_dir) / f"{name}-{momentum}-{batch}-{int(restore)}"
                d.mkdir()
                sym = measured_symbols(c, w, d)
                ram = fm.ram_terms(w)
                params = w.head_params
                trainer = sum(sym.get(s, 0) for s in TRAINER_SYMBOLS)
                modelled = ram["head_weights"] + fm.train_work_bytes(w) + ram["predict_activations"]
                per_param = 4 * (1 + fm.update_buffer(w) + fm.best_copy(w))
                limit = per_param * params + 2048
                ok = trainer <= limit
                print(f"{name:7s} {momentum:4.1f} {batch:2d} {'on' if restore else 'off':>4s} {params:6d} "
                      f"{sym['mt_params']:7d} {ram['update_buffer']:7d} {ram['best_weights']:7d} "
                      f"{sym['train_work']:7d} {sym.get('mt_pred_h', 0) + sym.get('mt_pred_z', 0):7d} {trainer:7d} "
                      f"{trainer / params:7.3f} {limit:7d}  {'=' if modelled == trainer else modelled}"
                      f"{'' if ok else '  OVER TARGET'}")
                rows.append({"date": when, "machine": platform.node(), "setup": name, "model": model, "cut": cut,
                             "samples": SAMPLES, "hidden": 32, "classes": CLASSES, "momentum": momentum,
                             "batch": batch, "restore_best": int(restore), "head_params": params,
                             "weights_b": sym["mt_params"], "update_buffer_b": ram["update_buffer"],
                             "best_copy_b": ram["best_weights"], "work_region_b": sym["train_work"],
                             "shuffle_index_b": ram["shuffle_index"],
                             "activations_b": ram["train_activations"] + ram["predict_activations"],
                             "trainer_b": trainer, "modelled_b": modelled, "bytes_per_param": f"{trainer / params:.4f}",
                             "target_b": limit, "within_target": int(ok)})
                key = f"{name}_m{momentum:g}_b{batch}_{'best' if restore else 'last'}"
                worst[key] = trainer - (per_param * params)
    path = append_rows("trainer_memory", rows)
    print(f"rows appended to {path.relative_to(ROOT)}")
    over = max(worst.values())
    print(" ".join([f"{k}_over_params_b={v}" for k, v in worst.items() if "_b8_last" in k or "_b1_last" in k]
                   + [f"max_over_params_b={over}", f"all_within_target={int(all(r['within_target'] for r in rows))}",
                      f"model_equals_elf={int(all(r['trainer_b'] == r['modelled_b'] for r in rows))}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
