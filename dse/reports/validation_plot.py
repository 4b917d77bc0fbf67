"""Predicted against measured for the validations in a study folder (DIR/validations/*.json): one panel per
quantity the boards measured - peak RAM, flash, instructions, cycles, time and energy per phase - with the line
predicted = measured. Only ok records are drawn; an unreadable record is skipped here (`dse calibrate --add`
is where a bad record is an error). Headless (matplotlib Figure)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from firmware.records import read_record
from vocabulary.phases import PHASES  # noqa: E402


def pairs(records) -> dict[str, list[tuple[float, float, str]]]:
    """quantity -> [(measured, predicted, label)] over the records, where both sides are numbers."""
    out: dict[str, list[tuple[float, float, str]]] = {}

    def add(quantity: str, measured, predicted, label: str) -> None:
        if isinstance(measured, (int, float)) and isinstance(predicted, (int, float)) and measured > 0 \
                and predicted > 0:
            out.setdefault(quantity, []).append((float(measured), float(predicted), label))

    for r in records:
        m, p = r.measured, r.predicted
        label = f"#{r.trial} {r.board}"
        add("peak RAM (KB)", None if m.peak_ram_bytes is None else m.peak_ram_bytes / 1024,
            None if p.ram_total is None else p.ram_total / 1024, label)
        add("flash (KB)", None if m.flash_bytes is None else m.flash_bytes / 1024,
            None if p.flash_total is None else p.flash_total / 1024, label)
        predicted_instructions = p.instructions if isinstance(p.instructions, dict) else {}
        for phase in PHASES:
            add("instructions", (m.instructions or {}).get(phase), predicted_instructions.get(phase),
                f"{label} {phase}")
            add("cycles", (m.cycles or {}).get(phase), p.cycles.get(phase), f"{label} {phase}")
            add("time (s)", (m.seconds or {}).get(phase), p.seconds.get(phase), f"{label} {phase}")
            add("energy (mJ)", (m.energy_mj or {}).get(phase), p.energy_mj.get(phase), f"{label} {phase}")
    return out


def load_records(folder: str | Path) -> list:
    records = []
    for path in sorted((Path(folder) / "validations").glob("*.json")):
        try:
            record = read_record(path)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if record.ok:
            records.append(record)
    return records


def validation_plot(folder: str | Path, spec) -> Figure | None:
    """The figure, or None when the folder has no ok validation record with a measured-and-predicted number."""
    data = pairs(load_records(folder))
    if not data:
        return None
    fig = Figure(figsize=(4.2 * len(data), 4.4))
    axes = fig.subplots(1, len(data), squeeze=False)[0]
    for ax, (quantity, pts) in zip(axes, data.items()):
        xs, ys = [q[0] for q in pts], [q[1] for q in pts]
        lo, hi = min(xs + ys), max(xs + ys)
        ax.plot([lo * 0.9, hi * 1.1], [lo * 0.9, hi * 1.1], color="0.5", lw=0.8, ls="--", label="predicted = measured")
        for k, phase in enumerate(PHASES):
            sel = [q for q in pts if q[2].endswith(phase)]
            if sel:
                ax.scatter([q[0] for q in sel], [q[1] for q in sel], s=22, color=f"C{k}", label=phase)
        rest = [q for q in pts if not q[2].endswith(PHASES)]
        if rest:
            ax.scatter([q[0] for q in rest], [q[1] for q in rest], s=22, color="C3", label="whole run")
        if hi / lo > 30:
            ax.set_xscale("log")
            ax.set_yscale("log")
        worst = max((q[0] / q[1] - 1 for q in pts), key=abs)  # error as the validation table gives it
        ax.set_title(f"{quantity}: {len(pts)} point(s), worst measured / predicted - 1: {worst:+.1%}", fontsize=8)
        ax.set_xlabel(f"measured {quantity}")
        ax.set_ylabel(f"predicted {quantity}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    boards = sorted({q[2].split()[1] for v in data.values() for q in v})
    fig.suptitle(f"{spec.name}: predicted vs measured, validations on {', '.join(boards)}", fontsize=10)
    fig.subplots_adjust(wspace=0.35, top=0.85)
    return fig
