"""The paper's published Table II (paper_table2.csv, transcribed with its citation in the file's header)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

PUBLISHED_TABLE2 = Path(__file__).with_name("paper_table2.csv")
CITATION = ("Profentzas et al., MicroTL: Transfer Learning on Low-Power IoT Devices, IEEE LCN 2022, "
            "doi 10.1109/LCN53696.2022.9843735, Table II")


@dataclass(frozen=True)
class PublishedValue:
    task: str  # cifar3 | har3b
    method: str  # microtl | edge_tl | cloud_qat
    samples: str  # "100".."600", or "all" (Cloud-QAT)
    metric: str  # accuracy (%) | uplink (kB = 1000 B)
    value: float
    std: float | None
    unit: str


def published_table2(path: str | Path = PUBLISHED_TABLE2) -> list[PublishedValue]:
    """Every published cell of Table II."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return [PublishedValue(r["task"], r["method"], r["samples"], r["metric"], float(r["value"]),
                               float(r["std"]) if r["std"] else None, r["unit"]) for r in rows]
