"""The firmware's JSON-lines output (protocol 1, docs/firmware.md) -> measurements.

Lines that are not JSON objects (a board's boot noise, a debugger's banner) are kept in `Report.noise` and otherwise
ignored. The sequence is validated: hello first, the three phases with their begin/end, features, train, result,
memory, done last. A malformed or truncated output raises ProtocolError with a one-line message naming what is
missing or wrong. An "error" line (the validation harness could not feed its inputs: no stream, a short read, the
host gone) raises FirmwareReportedError with the line's detail, whatever else the output holds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from vocabulary.phases import PHASES

PROTOCOL = 1


Span = tuple[int, int, int]  # (begin marker index, end marker index, sign)


def marker_spans(count: int, streaming: bool = False, samples: int = 0) -> dict[str, list[Span]]:
    """Which plat_phase_marker entries bound each phase, for the markers a run reached (`count` of them, in order):
    phase -> [(begin index, end index, +1 or -1)]; the phase's count is the signed sum of (end - begin). Phases
    whose markers were not all reached are left out.

    Stored mode: markers 2i / 2i + 1 begin and end phase i (collection, training, evaluation).
    Streaming (harness.c, `samples` = N): 0, 1 around mt_stream_begin (training); 2 = collection begins; per sample
    i three markers a = 3 + 3i, a + 1, a + 2 around mt_stream_sample (training: a .. a + 1) and the harness's hash of
    the feature (a + 1 .. a + 2, in no phase); 3N + 3 = collection ends; 3N + 4 / 3N + 5 around the evaluation.
    Collection = (3N + 3) - 2 minus every a .. a + 2; training = 0 .. 1 plus every a .. a + 1."""
    if not streaming:
        return {phase: [(2 * i, 2 * i + 1, 1)] for i, phase in enumerate(PHASES) if count > 2 * i + 1}
    end = 3 * samples + 3
    out: dict[str, list[Span]] = {}
    if count > end:
        steps = [(3 + 3 * i, 4 + 3 * i, 1) for i in range(samples)]
        out["collection"] = [(2, end, 1)] + [(3 + 3 * i, 5 + 3 * i, -1) for i in range(samples)]
        out["training"] = [(0, 1, 1)] + steps
    if count > end + 2:
        out["evaluation"] = [(end + 1, end + 2, 1)]
    return out


def streaming_of(lines: list[dict]) -> tuple[bool, int]:
    """(streaming, samples) from the hello line of a run's output (stored, 0 when there is none)."""
    hello = next((obj for obj in lines if obj.get("event") == "hello"), {})
    samples = hello.get("samples", 0)
    return hello.get("mode") == "streaming", samples if isinstance(samples, int) else 0


class ProtocolError(ValueError):
    """The firmware's output does not follow the protocol; the message is one line naming what is wrong."""


class FirmwareReportedError(ProtocolError):
    """The firmware printed an error line and stopped (e.g. its input stream ended); the message is that line's."""


def reported_error(lines: list[dict]) -> str | None:
    """One line from the first "error" event, None when there is none."""
    for obj in lines:
        if obj.get("event") == "error":
            what, detail = obj.get("what", "?"), obj.get("detail", "?")
            counts = (f" (got {obj['got']} of {obj['want']} bytes)" if "got" in obj and "want" in obj
                      and detail.startswith("input stream ended") else "")
            return f"firmware error ({what}): {detail}{counts}"
    return None


@dataclass
class Report:
    samples: int
    train: int
    val: int
    test: int
    feature_bytes: int
    features_fnv1a: int
    features_n: int
    epochs_run: int
    best_epoch: int
    correct: int
    test_count: int
    stack_bytes: int | None  # None where the board cannot measure it (-1 on the wire)
    heap_bytes: int | None
    status: int
    improvements: int | None = None  # validation-loss improvements (weight copies); None: firmware before it
    mode: str = "stored"  # hello's "mode" ("stored" when absent)
    replay: int = 0  # streaming: the ring size K
    steps: int | None = None  # streaming: SGD steps the train event reports
    cycles: dict[str, int] | None = None  # phase -> CPU cycles (silicon: DWT->CYCCNT)
    host_ns: dict[str, int] | None = None  # phase -> ns (host board: its "cycle" counter is a clock in ns)
    features: dict[int, bytes] = field(default_factory=dict)  # dump mode: store row -> bytes
    lines: list[dict] = field(default_factory=list)
    noise: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.test_count if self.test_count else float("nan")

    def feature_matrix(self):
        """The dumped store as an (N, F) int8 array (dump mode only)."""

        if len(self.features) != self.samples:
            raise ProtocolError(f"firmware output: {len(self.features)} feature lines for {self.samples} samples "
                                "(build with DSE_DUMP_FEATURES to dump them)")
        rows = [np.frombuffer(self.features[i], dtype=np.int8) for i in range(self.samples)]
        return np.stack(rows) if rows else np.zeros((0, self.feature_bytes), np.int8)


def split_lines(text: str) -> tuple[list[dict], list[str]]:
    """(JSON objects with an "event", other lines) of raw output."""
    objects, noise = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "event" in obj:
            objects.append(obj)
        else:
            noise.append(raw)
    return objects, noise


def _int(obj: dict, key: str, what: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"firmware output: {what} line has no integer {key!r}: {json.dumps(obj)}")
    return value


def parse(text: str, *, cycles_are_ns: bool = False) -> Report:
    """Parse and validate raw firmware output. cycles_are_ns: the board's counter is a clock in ns (host)."""
    lines, noise = split_lines(text)
    if not lines:
        hint = f"; first line: {noise[0][:80]!r}" if noise else ""
        raise ProtocolError(f"firmware output: no protocol lines (expected a hello line){hint}")
    error = reported_error(lines)
    if error:
        raise FirmwareReportedError(error)
    first = lines[0]
    if first.get("event") != "hello":
        raise ProtocolError(f"firmware output: first line is {first.get('event')!r}, expected 'hello'")
    if first.get("firmware") != "microtl-dse" or first.get("protocol") != PROTOCOL:
        raise ProtocolError(f"firmware output: hello names firmware {first.get('firmware')!r} protocol "
                            f"{first.get('protocol')!r}, expected microtl-dse protocol {PROTOCOL}")
    hello = {k: _int(first, k, "hello") for k in ("samples", "train", "val", "test", "feature")}
    seen: dict[str, dict] = {}
    edges: list[tuple[str, str]] = []
    features: dict[int, bytes] = {}
    counters: dict[str, int] = {}
    for obj in lines[1:]:
        event = obj.get("event")
        if "done" in seen:
            raise ProtocolError(f"firmware output: {event!r} line after 'done'")
        if event == "phase":
            phase, edge = obj.get("phase"), obj.get("edge")
            if phase not in PHASES or edge not in ("begin", "end"):
                raise ProtocolError(f"firmware output: unknown phase line {json.dumps(obj)}")
            edges.append((phase, edge))
        elif event == "feature":
            i = _int(obj, "i", "feature")
            try:
                features[i] = bytes.fromhex(obj.get("hex", ""))
            except (TypeError, ValueError):
                raise ProtocolError(f"firmware output: feature line {i} has malformed hex") from None
            if len(features[i]) != hello["feature"]:
                raise ProtocolError(f"firmware output: feature line {i} has {len(features[i])} bytes, "
                                    f"expected {hello['feature']}")
        elif event == "cycles":
            phase = obj.get("phase")
            if phase not in PHASES:
                raise ProtocolError(f"firmware output: cycles line for unknown phase {phase!r}")
            counters[phase] = _int(obj, "cycles", "cycles")
        elif event in ("features", "train", "result", "memory", "done"):
            if event in seen:
                raise ProtocolError(f"firmware output: second {event!r} line")
            seen[event] = obj
        elif event == "hello":
            raise ProtocolError("firmware output: second 'hello' line (did the board reset?)")
        # other events: ignored (forward compatible)
    expected_edges = [(p, e) for p in PHASES for e in ("begin", "end")]
    if edges != expected_edges[:len(edges)]:
        raise ProtocolError(f"firmware output: phase lines out of order: {edges}")
    missing = [f"{p} {e}" for p, e in expected_edges[len(edges):]]
    missing += [event for event in ("features", "train", "result", "memory", "done") if event not in seen]
    if missing:
        raise ProtocolError(f"firmware output truncated or incomplete: missing {', '.join(missing)}")
    fnv_text = seen["features"].get("fnv1a")
    try:
        fnv = int(fnv_text, 16)
    except (TypeError, ValueError):
        raise ProtocolError(f"firmware output: features line has a malformed fnv1a {fnv_text!r}") from None
    stack = _int(seen["memory"], "stack_bytes", "memory")
    heap = _int(seen["memory"], "heap_bytes", "memory")
    report = Report(
        samples=hello["samples"], train=hello["train"], val=hello["val"], test=hello["test"],
        feature_bytes=hello["feature"], features_fnv1a=fnv, features_n=_int(seen["features"], "n", "features"),
        epochs_run=_int(seen["train"], "epochs_run", "train"), best_epoch=_int(seen["train"], "best_epoch", "train"),
        improvements=_int(seen["train"], "improvements", "train") if "improvements" in seen["train"] else None,
        correct=_int(seen["result"], "correct", "result"), test_count=_int(seen["result"], "test", "result"),
        stack_bytes=None if stack < 0 else stack, heap_bytes=None if heap < 0 else heap,
        status=_int(seen["done"], "status", "done"), features=features, lines=lines, noise=noise)
    if first.get("mode", "stored") not in ("stored", "streaming"):
        raise ProtocolError(f"firmware output: hello names an unknown mode {first.get('mode')!r}")
    if first.get("mode") == "streaming":
        report.mode, report.replay = "streaming", _int(first, "replay", "hello")
        report.steps = _int(seen["train"], "steps", "train")
    if counters:
        if cycles_are_ns:
            report.host_ns = counters
        else:
            report.cycles = counters
    return report
