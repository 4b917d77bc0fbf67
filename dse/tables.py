"""Plain-text and markdown tables for the terminal and summary.md: aligned columns, numbers right-aligned."""
from __future__ import annotations

from collections.abc import Sequence


def _is_number(text: str) -> bool:
    t = text.replace(",", "").replace("±", "").replace("%", "").replace(".", "").replace("-", "").replace(" ", "")
    return t.isdigit()


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> str:
    """Columns separated by two spaces; numeric cells right-aligned, text left-aligned."""
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) or not r[i] for r in cells[1:]) and len(cells) > 1 for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [r[i].rjust(widths[i]) if numeric[i] else r[i].ljust(widths[i]) for i in range(len(headers))]
        lines.append((indent + "  ".join(parts)).rstrip())
    return "\n".join(lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def esc(c: object) -> str:
        return ("" if c is None else str(c)).replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def thousands(n: int | float) -> str:
    return f"{int(n):,}"


def shape(t: Sequence[int]) -> str:
    return "(" + ", ".join(str(v) for v in t) + ")"
