"""The frozen network's activation memory: one byte arena planned by liveness (what codegen declares and the RAM
model prices).

A pure function of the frozen layers up to the cut (zoo `LayerSpec`s or quantized `QLayer`s: kind, shapes, kernel,
stride, out_bits). The forward pass is a list of steps:
- a conv2d followed by a maxpool2d (the pool part of the layer list, so not when the cut is the conv) is ONE fused
  step: for each pool output row r, the conv rows [r*s_p, r*s_p + k_p) are computed into a band buffer of k_p rows
  (nn_conv2d_rows_q7) and pooled into output row r (nn_maxpool2d_q7); the conv's full output never exists, conv
  rows no pool row reads (floor-cropped) are never computed, overlapping pools (s_p < k_p) recompute rows;
- every other layer is a step of its own.
Buffers: each step's output (except the last step's, which is the caller's feature row), live from the step that
writes it to the step that reads it; the band of a fused step and the scratch of the conv / fc kernels
(models.kernels.scratch_bytes), live during their own step. The network input is the caller's pointer.

Placement (TinyEngine / TFLM style): largest buffer first, each at the lowest 4-byte-aligned offset where it does
not overlap any already placed buffer whose live interval intersects its own; the arena is the highest end,
rounded up to 4. Buffers live in the same step never overlap (a kernel's input, output, band and scratch are
disjoint), ReLU works in place and adds nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Sequence

from .kernels import scratch_bytes

ALIGN = 4
SCRATCH_KINDS = ("conv2d", "conv1d", "fc")  # kernels whose C API takes a scratch pointer (firmware/c/nn_q7.h)


@dataclass(frozen=True)
class Buffer:
    name: str  # "<layer>.out", "<conv>.band", "<layer>.scratch"
    size: int  # bytes
    first: int  # first step it is live in
    last: int  # last step it is live in
    offset: int = 0  # byte offset in the arena (a multiple of ALIGN)


@dataclass(frozen=True)
class Step:
    layers: tuple[str, ...]  # one layer, or (conv, pool) computed fused
    src: str  # buffer name, or "input" (the caller's pointer)
    dst: str  # buffer name, or "feature" (the caller's sample store row)
    band: str | None = None  # fused steps: the conv rows of one pool row
    scratch: str | None = None  # the conv / fc kernel's scratch

    @property
    def fused(self) -> bool:
        return len(self.layers) == 2


@dataclass(frozen=True)
class ArenaPlan:
    steps: tuple[Step, ...]
    buffers: tuple[Buffer, ...]  # in placement order (largest first)
    size: int  # bytes of the arena (a multiple of ALIGN; 0 when nothing is placed)

    def buffer(self, name: str) -> Buffer:
        for b in self.buffers:
            if b.name == name:
                return b
        raise KeyError(name)

    def offset(self, name: str) -> int:
        return self.buffer(name).offset

    def peak_live(self) -> int:
        """Largest sum of the sizes live in one step (a lower bound of any placement's arena)."""
        return max((sum(b.size for b in self.buffers if b.first <= s <= b.last) for s in range(len(self.steps))),
                   default=0)


def _bytes(layer) -> int:
    return prod(layer.out_shape) * layer.out_bits // 8


def fuses(conv, pool) -> bool:
    """True when codegen computes `conv` and the max pool `pool` that follows it as one fused step."""
    return conv.kind == "conv2d" and pool.kind == "maxpool2d"


def band_rows(conv, pool) -> list[int]:
    """The conv output rows a fused conv -> pool computes, in call order (a row appears once per pool row that
    reads it: overlapping pools recompute; floor-cropped rows do not appear)."""
    rows = []
    for r in range(pool.out_shape[0]):
        rows.extend(range(r * pool.stride, r * pool.stride + pool.kernel))
    return rows


def steps_of(layers: Sequence) -> list[tuple]:
    """The frozen layers (input excluded, cut last) grouped into steps: (layer,) or (conv, pool)."""
    out, i = [], 0
    while i < len(layers):
        if i + 1 < len(layers) and fuses(layers[i], layers[i + 1]):
            out.append((layers[i], layers[i + 1]))
            i += 2
        else:
            out.append((layers[i],))
            i += 1
    return out


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _place(buffers: list[Buffer]) -> tuple[list[Buffer], int]:
    order = sorted(buffers, key=lambda b: (-b.size, b.first, b.name))
    placed: list[Buffer] = []
    for b in order:
        conflicts = sorted((p for p in placed if p.first <= b.last and b.first <= p.last), key=lambda p: p.offset)
        offset = 0
        for p in conflicts:
            if offset + b.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        placed.append(Buffer(b.name, b.size, b.first, b.last, offset))
    size = _align(max((p.offset + p.size for p in placed), default=0))
    return placed, size


def plan_arena(layers: Sequence) -> ArenaPlan:
    """The liveness plan of the frozen layers (input layer excluded; the cut last). See the module docstring."""
    layers = [layer for layer in layers if layer.kind != "input"]
    if not layers:
        raise ValueError("arena: no frozen layer to plan")
    groups = steps_of(layers)
    steps, buffers = [], []
    src = "input"
    for i, group in enumerate(groups):
        last = i == len(groups) - 1
        head, tail = group[0], group[-1]
        dst = "feature" if last else f"{tail.name}.out"
        if not last:
            buffers.append(Buffer(dst, _bytes(tail), i, i + 1))
        band = scratch = None
        if len(group) == 2:
            band = f"{head.name}.band"
            buffers.append(Buffer(band, tail.kernel * head.out_shape[1] * head.out_shape[2] * head.out_bits // 8,
                                  i, i))
        if head.kind in SCRATCH_KINDS and scratch_bytes(head):
            scratch = f"{head.name}.scratch"
            buffers.append(Buffer(scratch, scratch_bytes(head), i, i))
        steps.append(Step(tuple(layer.name for layer in group), src, dst, band, scratch))
        src = dst
    placed, size = _place(buffers)
    return ArenaPlan(tuple(steps), tuple(placed), size)


def arena_bytes(layers: Sequence) -> int:
    """Bytes of the frozen arena the generated firmware declares for these layers."""
    return plan_arena(layers).size
