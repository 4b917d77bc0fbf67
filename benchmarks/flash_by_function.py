"""Where the deployed image's flash changes between configurations of one shape: per function, measured.

Rebuilds the deployed image (firmware/c/deployed.c, qemu platform, DSP kernels) of campaign points of
cost_models/calibration/qemu-an386/campaign.csv whose key contains every --match string, reads each function's
size from the ELF's symbol table, and prints, per (model, cut, hidden), the flash range and every function whose
code size differs between its points (with the points' N_TRAIN, N_VAL, batch and epoch budget). A rebuilt image
must equal the record's deployed flash (checked: the campaign ran this firmware). --c-dir builds another copy of
firmware/c instead (an experiment on the C: its flash then differs from the records, and the script says by how
much). What it found (docs/calibration.md, "Deployed flash"): the trainer's outer function mt_train (with
mt_shuffle and mt_val_loss inlined or not) is compiled differently for each N, batch, validation count and epoch
budget, since they are compile-time constants GCC peels and inlines on; every other function is the same.
Appends to benchmarks/results/flash_by_function.csv (one row per point and varying function).

    .venv/bin/python benchmarks/flash_by_function.py --match motions_rnn/conv1/ --match har_rnn/conv1/
    .venv/bin/python benchmarks/flash_by_function.py --match har_rnn/conv1/h8 --c-dir /tmp/c-experiment
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

CAMPAIGN = ROOT / "cost_models" / "calibration" / "qemu-an386" / "campaign.csv"


def function_sizes(elf: Path) -> dict[str, int]:
    """Code bytes per function symbol of an ELF (Thumb: the symbol's size)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with elf.open("rb") as fh:
        sizes = {}
        for section in ELFFile(fh).iter_sections():
            if isinstance(section, SymbolTableSection):
                for sym in section.iter_symbols():
                    if sym["st_info"]["type"] == "STT_FUNC" and sym["st_size"]:
                        sizes[sym.name] = int(sym["st_size"])
    return sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--match", action="append", default=[], help="a string every chosen key contains (repeatable: "
                                                                 "a key matching any one --match is chosen)")
    ap.add_argument("--c-dir", help="a copy of firmware/c to build instead (an experiment)")
    args = ap.parse_args()
    if args.c_dir and not (Path(args.c_dir) / "microtl.c").is_file():
        print(f"flash_by_function: --c-dir {args.c_dir}: no microtl.c there", file=sys.stderr)
        return 2

    import firmware.build as fb
    from cost_models.microtl_dse.runs import load_runs
    from firmware.calibrate import campaign_data
    from firmware.codegen import generate
    from vocabulary.configuration import validation_count
    from results_csv import append_rows

    if args.c_dir:
        fb.C_DIR = Path(args.c_dir).resolve()
    records = {r.key: r for r in load_runs(CAMPAIGN) if r.metric == "deployed_flash"}
    keys = sorted(k for k in records if not args.match or any(m in k for m in args.match))
    if not keys:
        print(f"flash_by_function: no campaign key contains {' or '.join(args.match)}", file=sys.stderr)
        return 2
    points = []
    with tempfile.TemporaryDirectory(prefix="flash-by-function-") as tmp:
        for i, key in enumerate(keys):
            c = records[key].config
            gen = generate(c, Path(tmp) / f"p{i}" / "gen", data_path=campaign_data(c.task, Path(tmp) / "data"))
            elf = fb.build(gen, "cortex-m4", Path(tmp) / f"p{i}" / "build", platform="qemu", image="deployed")
            n_val = validation_count(c.samples)
            points.append({"key": key, "group": f"{c.model}/{c.cut}/h{c.hidden}", "n_train": c.samples - n_val,
                           "n_val": n_val, "batch": c.batch, "epochs": c.epochs, "flash": elf.flash_bytes,
                           "recorded": int(records[key].value), "functions": function_sizes(Path(elf.path))})
    rows = report(points, bool(args.c_dir))
    stamp = {"date": dt.date.today().isoformat(), "machine": platform.node(), "c_dir": args.c_dir or "firmware/c"}
    print(f"rows appended to {append_rows('flash_by_function', [{**stamp, **r} for r in rows])}")
    return 0


def report(points: list[dict], experiment: bool) -> list[dict]:
    """Per group: the flash range and the functions whose size varies; the rows for the CSV."""
    groups = defaultdict(list)
    for p in points:
        groups[p["group"]].append(p)
    rows = []
    for group, pts in groups.items():
        flash = [p["flash"] for p in pts]
        off = [p["flash"] - p["recorded"] for p in pts]
        print(f"{group}: {len(pts)} points, deployed flash {min(flash)}..{max(flash)} B (spread "
              f"{max(flash) - min(flash)} B); rebuilt - recorded {min(off):+d}..{max(off):+d} B"
              + ("" if experiment or not any(off) else "  (NOT the campaign's firmware)"))
        names = sorted(set().union(*(p["functions"] for p in pts)))
        varying = [n for n in names if len({p["functions"].get(n, 0) for p in pts}) > 1]
        for p in sorted(pts, key=lambda p: p["flash"]):
            sizes = ", ".join(f"{n} {p['functions'].get(n, 0)}" for n in varying)
            print(f"  N_TRAIN {p['n_train']:3d} N_VAL {p['n_val']:2d} B {p['batch']:2d} E {p['epochs']:2d}: "
                  f"{p['flash']} B  {sizes}")
            rows += [{"group": group, "key": p["key"], "n_train": p["n_train"], "n_val": p["n_val"],
                      "batch": p["batch"], "epochs": p["epochs"], "flash": p["flash"], "recorded": p["recorded"],
                      "function": n, "bytes": p["functions"].get(n, 0)} for n in varying]
    return rows


if __name__ == "__main__":
    sys.exit(main())
