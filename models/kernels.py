"""Which implementation of a frozen-layer kernel our firmware runs, and the scratch memory it needs (pure Python, no
torch: firmware/codegen.py and the cost models both read it, and neither may import the other).

One place for two firmware facts that code generation (firmware/codegen.py: the arena plan) and the cost models
(instructions and RAM) must agree on:
- `fast_path(layer, board_kind)`: whether the Cortex-M4 DSP kernel (firmware/c, ACLE intrinsics) takes this
  layer's shape on a board of that kind, or the portable C kernel runs (the fast kernels fall back to the portable
  ones for shapes they cannot take: never silently wrong);
- `scratch_bytes(layer)`: the scratch buffer (expanded q15 patches / vectors) the fast kernel needs, placed in the
  frozen arena by the liveness plan. Generated sources are the same for every board, so the scratch is reserved
  whether or not the board runs the fast path.

`layer` is any object with the zoo's layer fields (`models.zoo.LayerSpec`, `models.quantize.QLayer`): kind,
in_shape, out_shape, kernel, stride, padding.
"""
from __future__ import annotations

from math import prod

Q15 = 2  # bytes of one expanded q15 value

# board kinds: "cortex-m4" builds the DSP kernels (qemu-an386, nrf52840dk); "portable" is the plain C (host)
FAST_BOARD_KINDS = ("cortex-m4",)
KINDS = ("portable", "cortex-m4")
BOARD_KINDS = {"qemu-an386": "cortex-m4", "nrf52840dk": "cortex-m4"}  # firmware/build.py's target of each board


def board_kind(board: str) -> str:
    """The kernels a board's firmware runs: "cortex-m4" (the DSP build) for the Cortex-M4 boards, else "portable"
    (the host build). What the instruction-count model of a calibration of `board` must count."""
    return BOARD_KINDS.get(board, "portable")


def fast_path(layer, board_kind: str = "cortex-m4") -> bool:
    """True when the fast (DSP) kernel runs this layer on a board of `board_kind` (firmware/c/nn_q7_m4.c's
    dispatch: conv2d, conv1d and fc always, given their scratch; maxpool2d when the channels are a multiple of 4;
    the LSTM / GRU matrix products in nn_rnn_q7.c always)."""
    if board_kind not in FAST_BOARD_KINDS:
        return False
    if layer.kind == "maxpool2d":
        return layer.in_shape[-1] % 4 == 0
    return layer.kind in ("conv2d", "conv1d", "fc", "lstm", "gru")


def _patch_scratch(taps: int, in_ch: int) -> int:
    """Two expanded q15 patches of K = taps * in_ch values (each rounded up to a multiple of 4: the last group is
    zero-padded), plus a q7 staging area of as many bytes when in_ch % 4 != 0 (nn_patch gathers such patches before
    expanding them)."""
    k4 = _round4(taps * in_ch)
    return 2 * k4 * Q15 + (k4 if in_ch % 4 else 0)


def _round4(n: int) -> int:
    return (n + 3) & ~3


def scratch_bytes(layer) -> int:
    """Bytes of scratch the fast kernel of `layer` needs (0: none); firmware/c/nn_q7_m4.c's layout."""
    if layer.kind == "conv2d":
        return _patch_scratch(layer.kernel * layer.kernel, layer.in_shape[-1])
    if layer.kind == "conv1d":
        return _patch_scratch(layer.kernel, layer.in_shape[-1])
    if layer.kind == "fc":
        return _round4(prod(layer.in_shape)) * Q15  # the input vector expanded once, zero-padded to a group
    return 0
