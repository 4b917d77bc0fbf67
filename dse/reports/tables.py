"""Plain-text and markdown tables for the terminal and summary.md: aligned columns, numbers right-aligned; on a
terminal, text columns wrap (and, past that, the rightmost columns are left out, said in a last line) so that a
table fits its width.

Written here rather than with tabulate (0.10): its plain format pads every header by two more spaces (a module
global, MIN_PADDING) and its pipe format does not escape `|` inside a cell, which breaks a markdown table.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import textwrap
from collections.abc import Sequence

MIN_TEXT_WIDTH = 8  # a text column is never wrapped narrower than this
GAP = "  "


def _is_number(text: str) -> bool:
    t = text.replace(",", "").replace("±", "").replace("%", "").replace(".", "").replace("-", "").replace(" ", "")
    return t.isdigit()


def terminal_width() -> int | None:
    """The width tables must fit: $COLUMNS when set, the terminal's when output goes to one, else None (a pipe
    or a file: no limit)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return max(20, int(os.environ["COLUMNS"]))
    if sys.stdout.isatty():
        return max(20, shutil.get_terminal_size().columns)
    return None


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "",
               width: int | None = None, drop_first: Sequence[str] = ()) -> str:
    """Columns separated by two spaces; numeric cells right-aligned, text left-aligned. With `width`, text cells
    and headers wrap to fit; if even that is too wide, columns are dropped - those named in `drop_first`, then the
    rightmost - and a last line names them."""
    cells = [[str(c) for c in headers]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    n = len(headers)
    widths = [max(len(r[i]) for r in cells) for i in range(n)]
    numeric = [all(_is_number(r[i]) or not r[i] for r in cells[1:]) and len(cells) > 1 for i in range(n)]
    keep = list(range(n))
    if width is not None:
        order = [headers.index(h) for h in drop_first if h in headers]
        order += [i for i in reversed(range(n)) if i not in order]
        widths, keep = _fit(cells, widths, numeric, width - len(indent), order)
    lines = []
    for r in cells:
        wrapped = [textwrap.wrap(r[i], widths[i], break_on_hyphens=False) or [""] for i in keep]
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for w, i in zip(wrapped, keep):
                text = w[k] if k < len(w) else ""
                parts.append(text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]))
            lines.append((indent + GAP.join(parts)).rstrip())
    if len(keep) < n:
        note = (f"({n - len(keep)} more column(s) not shown at this width: "
                f"{', '.join(cells[0][i] for i in range(n) if i not in keep)}; use --json or a wider terminal)")
        lines += textwrap.wrap(note, max(20, (width or 80) - len(indent)), initial_indent=indent,
                               subsequent_indent=indent)
    return "\n".join(lines)


def _fit(cells: list[list[str]], widths: list[int], numeric: list[bool], width: int,
         drop_order: list[int]) -> tuple[list[int], list[int]]:
    """Column widths that fit `width` and the columns kept: the widest text column narrows first (its cells wrap);
    numeric columns narrow only to their longest value (their headers wrap at spaces)."""
    widths = list(widths)
    floor = []
    for i, w in enumerate(widths):
        header_word = max((len(word) for word in cells[0][i].split()), default=1)
        if numeric[i]:
            floor.append(max([header_word] + [len(r[i]) for r in cells[1:]]))
        else:
            floor.append(min(w, max(MIN_TEXT_WIDTH, min(header_word, 16))))

    def total(cols):
        return sum(widths[i] for i in cols) + len(GAP) * (len(cols) - 1)

    keep = list(range(len(widths)))
    while total(keep) > width:
        shrinkable = [i for i in keep if widths[i] > floor[i]]
        if not shrinkable:
            if len(keep) == 1:
                break
            keep.remove(next(i for i in drop_order if i in keep))
            continue
        widest = max(shrinkable, key=lambda i: (widths[i] - floor[i] if numeric[i] else widths[i], -i))
        widths[widest] -= 1
    return widths, keep


def sig(x: float | None, digits: int = 3) -> str:
    """A figure to `digits` significant digits, no exponent: 150, 92.3, 7.02, 0.0123, 1,230."""
    if x is None:
        return ""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = digits - 1 - math.floor(math.log10(abs(x)))
    value = round(x, decimals)
    if value and math.floor(math.log10(abs(value))) > digits - 1 - decimals:  # 99.96 rounds up to 100
        decimals -= 1
        value = round(x, decimals)
    return f"{value:,.{max(0, decimals)}f}"


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
