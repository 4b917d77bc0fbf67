"""The insncount plugin's block file (``blocks=FILE``): per translated block execution counts, snapshotted at every
phase marker, and the per-phase block counts derived from them.

Format (see insncount.c): header lines ``marker <instructions>`` (one per plat_phase_marker entry, in order) and a
final ``total <instructions>``, each followed by ``block 0x<start> <n insns> 0x<end> <cumulative executions>`` for
the blocks whose count changed since the previous header. A block is keyed by (start, n, end): QEMU can translate the
same address into blocks of different lengths (e.g. a one-instruction block for an I/O access under -icount).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vocabulary.phases import PHASES  # phase i: marker 2i = begin, 2i + 1 = end

BlockKey = tuple[int, int, int]  # (start address, instructions, end address)


class BlockFileError(ValueError):
    """The block file is malformed (one line naming the file, line number and text)."""


@dataclass
class Snapshot:
    """The plugin's counters at one header line: cumulative instructions and cumulative executions per block."""

    kind: str  # "marker" | "total"
    instructions: int
    counts: dict[BlockKey, int] = field(default_factory=dict)


@dataclass
class BlockProfile:
    """Every snapshot of one run, in order (markers, then the total)."""

    snapshots: list[Snapshot]

    @property
    def markers(self) -> list[Snapshot]:
        return [s for s in self.snapshots if s.kind == "marker"]

    @property
    def total(self) -> Snapshot | None:
        return next((s for s in self.snapshots if s.kind == "total"), None)

    def blocks(self) -> set[BlockKey]:
        """Every block that executed at least once."""
        last = self.snapshots[-1] if self.snapshots else None
        return set(last.counts) if last else set()

    def phase_counts(self, spans: dict | None = None) -> dict[str, dict[BlockKey, int]]:
        """{phase: {block: executions between its begin and end markers}} for the phases whose markers were hit.
        spans: phase -> [(begin index, end index, sign)] (firmware.protocol.marker_spans; default: stored mode's
        markers 2i / 2i + 1)."""
        marks = self.markers
        out: dict[str, dict[BlockKey, int]] = {}
        for phase, parts in (_stored_spans(len(marks)) if spans is None else spans).items():
            diff: dict[BlockKey, int] = {}
            for a, b, sign in parts:
                begin, end = marks[a].counts, marks[b].counts
                for k, c in end.items():
                    if c != begin.get(k, 0):
                        diff[k] = diff.get(k, 0) + sign * (c - begin.get(k, 0))
            out[phase] = {k: c for k, c in diff.items() if c}
        return out

    def phase_instructions(self, spans: dict | None = None) -> dict[str, int]:
        """The plugin's own instruction counter per phase (the same figures as the counts file's markers)."""
        marks = self.markers
        return {phase: sum(sign * (marks[b].instructions - marks[a].instructions) for a, b, sign in parts)
                for phase, parts in (_stored_spans(len(marks)) if spans is None else spans).items()}


def _stored_spans(count: int) -> dict[str, list[tuple[int, int, int]]]:
    return {phase: [(2 * i, 2 * i + 1, 1)] for i, phase in enumerate(PHASES) if count > 2 * i + 1}


def instructions_of(counts: dict[BlockKey, int]) -> int:
    """Instructions retired by `counts` executions (executions x instructions per block)."""
    return sum(c * key[1] for key, c in counts.items())


def parse_blocks(text: str, source: str = "<blocks>") -> BlockProfile:
    snapshots: list[Snapshot] = []
    current: dict[BlockKey, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        try:
            if parts and parts[0] in ("marker", "total") and len(parts) == 2:
                current = dict(current)  # cumulative: start from the previous snapshot's counts
                snapshots.append(Snapshot(parts[0], int(parts[1]), current))
            elif parts and parts[0] == "block" and len(parts) == 5 and snapshots:
                current[(int(parts[1], 16), int(parts[2]), int(parts[3], 16))] = int(parts[4])
            elif parts:
                raise ValueError
        except ValueError:
            raise BlockFileError(f"{source}:{number}: unexpected line {line.strip()[:80]!r}") from None
    return BlockProfile(snapshots)


def read_blocks(path: str | Path) -> BlockProfile:
    path = Path(path)
    return parse_blocks(path.read_text(), str(path))
