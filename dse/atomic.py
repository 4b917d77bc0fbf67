"""Atomic file output: write next to the target, then os.replace, so a reader (or a Ctrl-C) never sees a
half-written report."""
from __future__ import annotations

from pathlib import Path

from cost_models.atomic import replacing

__all__ = ["replacing", "write_text", "save_figure"]


def write_text(path: str | Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure(fig, path: str | Path, dpi: int = 120) -> None:
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
