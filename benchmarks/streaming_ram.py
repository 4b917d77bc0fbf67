"""Deployed-image RAM, streaming (TinyOL) against stored (MicroTL), at N = 100 samples (issue 14).

Measured: the deployed ELF (deployed.c, cortex-m4, qemu platform) built from codegen's sources for each
configuration; static RAM = .data + .bss (firmware.build), and the sizes of the symbols that differ between the
modes (arm ELF .symtab): the sample store mt_store and the labels array (stored only), the ring mt_ring /
mt_ring_labels (streaming, K > 0), dse_arena (stored: max(arena, trainer work); streaming: arena + work).
Digits, momentum 0.9, lr 0.01; stored at batch 8 with restore_best (the quickstart's kind) and at batch 1 with the
last weights (streaming's own settings), streaming at K = 0, 8, 32.
Prints a table, appends rows to benchmarks/results/streaming_ram.csv; the last line is key=value figures.
Usage: .venv/bin/python benchmarks/streaming_ram.py [cut hidden ...]   (default: fc1 0 pool2 16)
"""
from __future__ import annotations

import platform
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from elftools.elf.elffile import ELFFile  # noqa: E402
from results_csv import append_rows  # noqa: E402 (benchmarks/ is the script's folder)

from firmware.build import build  # noqa: E402
from firmware.codegen import generate  # noqa: E402
from vocabulary.configuration import Configuration  # noqa: E402

SAMPLES = 100
SYMBOLS = ("mt_store", "labels", "mt_ring", "mt_ring_labels", "dse_arena", "mt_params")


def variants(cut: str, hidden: int) -> dict[str, Configuration]:
    base = dict(task="digits", model="digits_cnn", cut=cut, hidden=hidden, samples=SAMPLES, lr=0.01, momentum=0.9)
    out = {"stored b8 best": Configuration(**base, epochs=20, batch=8),
           "stored b1 last": Configuration(**base, epochs=20, batch=1, restore_best=False)}
    for k in (0, 8, 32):
        out[f"streaming K={k}"] = Configuration(**base, epochs=1, batch=1, restore_best=False, mode="streaming",
                                                replay=k)
    return out


def symbol_sizes(path: Path) -> dict[str, int]:
    with open(path, "rb") as fh:
        symtab = ELFFile(fh).get_section_by_name(".symtab")
        return {s.name: s["st_size"] for s in symtab.iter_symbols() if s.name in SYMBOLS}


def main(argv: list[str]) -> int:
    pairs = argv or ["fc1", "0", "pool2", "16"]
    setups = [(pairs[i], int(pairs[i + 1])) for i in range(0, len(pairs), 2)]
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for cut, hidden in setups:
            for name, config in variants(cut, hidden).items():
                d = Path(tmp) / f"{cut}-{hidden}-{name.replace(' ', '_').replace('=', '')}"
                gen = generate(config, d / "gen", test_limit=1)
                elf = build(gen, "cortex-m4", d / "build", image="deployed", platform="qemu")
                sizes = symbol_sizes(elf.path)
                rows.append({"date_utc": date, "host": platform.node(), "cut": cut, "hidden": hidden,
                             "samples": SAMPLES, "variant": name, "static_ram_bytes": elf.static_ram_bytes,
                             "flash_bytes": elf.flash_bytes, **{s: sizes.get(s, 0) for s in SYMBOLS}})
                print(f"{cut:6s} h{hidden:<3d} {name:16s} static RAM {elf.static_ram_bytes:7,d} B  flash "
                      f"{elf.flash_bytes:7,d} B  " + "  ".join(f"{s} {sizes[s]}" for s in SYMBOLS if s in sizes))
                figures[f"{cut}_h{hidden}_{name.replace(' ', '_').replace('=', '')}"] = elf.static_ram_bytes
    path = append_rows("streaming_ram", rows)
    print(f"rows appended to {path}")
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
