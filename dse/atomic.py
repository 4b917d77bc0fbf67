"""Atomic file output: write next to the target, then os.replace, so a reader (or a Ctrl-C) never sees a
half-written report."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path in the target's folder; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure(fig, path: str | Path, dpi: int = 120) -> None:
    with replacing(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
