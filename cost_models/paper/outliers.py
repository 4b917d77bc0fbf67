"""Outlier screening of measurement records, before any fit (published tables have typos).

Two model-free checks: a record that breaks its own series' linear trend in N (Siegel's repeated-medians line: up
to half the points may be bad), and a run whose energy/time disagrees with the board's measured phase power.
Flagged records are left out of the fits and reported with the reason, so the fit does not bend to them.
"""
from __future__ import annotations

from collections import defaultdict

from scipy.stats import siegelslopes

from cost_models.board import BoardSpec
from cost_models.paper.records import Record

MIN_SERIES = 3  # points needed before a trend can single one out


def trend_deviations(records: list[Record]) -> dict[int, float]:
    """Relative deviation of each record from the repeated-medians line of its series (same file, metric, scope
    and configuration except N), keyed by index into `records`; records in too short a series are absent."""
    series: dict[tuple, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        series[(rec.file, rec.metric, rec.scope, rec.config_key())].append(i)
    out: dict[int, float] = {}
    for members in series.values():
        if len({records[i].samples for i in members}) < MIN_SERIES:
            continue
        xs = [records[i].samples for i in members]
        ys = [records[i].value for i in members]
        slope, intercept = siegelslopes(ys, xs)[:2]
        for i, x, y in zip(members, xs, ys):
            trend = intercept + slope * x
            if trend > 0:
                out[i] = y / trend - 1
    return out


def screen(records: list[Record], board: BoardSpec, threshold: float) -> dict[int, list[str]]:
    """Reasons to distrust each flagged record, keyed by index into `records`."""
    flags: dict[int, list[str]] = defaultdict(list)
    trend = trend_deviations(records)
    for i, dev in trend.items():
        if abs(dev) > threshold:
            flags[i].append(f"{dev:+.1%} off its series' linear trend in N (repeated medians)")
    by_run: dict[tuple, dict[str, int]] = defaultdict(dict)
    for i, rec in enumerate(records):
        if rec.metric in ("time", "cycles", "energy"):
            by_run[(rec.file, rec.run, rec.phase)][rec.metric] = i
    for (_, _, phase), idx in by_run.items():
        t = idx.get("time", idx.get("cycles"))
        e = idx.get("energy")
        if t is None or e is None:
            continue
        seconds = records[t].value / (board.clock_hz if records[t].metric == "cycles" else 1)
        power = board.phase_power_w(phase)
        implied = records[e].value * 1e-3 / seconds
        dev = implied / power - 1
        if abs(dev) <= threshold:
            continue
        reason = (
            f"energy/time = {implied * 1e3:.2f} mW is {dev:+.1%} off the board's {phase} power "
            f"{power * 1e3:.2f} mW"
        )
        suspects = [i for i in (t, e) if abs(trend.get(i, 0.0)) > threshold] or [t, e]
        for i in suspects:
            flags[i].append(reason)
    return dict(flags)
