"""Integer reference of the "q7" scheme: the golden model the C kernels must match bit for bit.

One pure numpy function per kernel, named like the C kernels. Conventions shared by all of them:
- activations are int8, channels-last; a batch dimension N comes first;
- fixed point with power-of-two scales: a value v is stored as q = v * 2^f (f fractional bits);
- conv/fc accumulate in int32 exactly as C does:
      acc  = ((int32)bias[o] << bias_shift) + (1 << (out_shift - 1))      # NN_ROUND(out_shift)
      acc += sum_k (int32)x[k] * (int32)w[o][k]
      out  = ssat8(acc >> out_shift)                                        # arithmetic shift, clamp to [-128, 127]
  with bias_shift >= 0 and out_shift >= 1. The sum is computed here with float64 BLAS, which is exact because every
  partial sum of int8 x int8 products is an integer far below 2^53; an accumulator leaving the int32 range raises
  OverflowError (it would wrap on the device).
- zero padding pads with q = 0 (the real value 0 in a symmetric scheme).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import intref_rnn

if TYPE_CHECKING:  # pragma: no cover
    from .quantize import QuantizedModel

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def ssat8(v: np.ndarray) -> np.ndarray:
    """Signed saturation to int8 (CMSIS __SSAT(v, 8))."""
    return np.clip(v, -128, 127).astype(np.int8)


def quantize_input(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """Float sample -> int8: q = ssat8(floor(x * 2^f + 0.5)), computed in float32 like the C
    `(q7_t)__SSAT((int32_t)floorf(x * s + 0.5f), 8)` with s = 2^f exactly (ldexpf(1.0f, f))."""
    scaled = np.asarray(x, dtype=np.float32) * np.float32(2.0**frac_bits) + np.float32(0.5)
    return ssat8(np.floor(scaled))


def relu_q7(x: np.ndarray) -> np.ndarray:
    """max(0, x) on int8 (arm_relu_q7)."""
    return np.maximum(x, np.int8(0))


def _requantize(products: np.ndarray, bias: np.ndarray, bias_shift: int, out_shift: int) -> np.ndarray:
    """products: exact integer sums (float64 or int); returns int8 ssat8((bias<<bs) + round + sum >> os)."""
    if bias_shift < 0 or out_shift < 1:
        raise ValueError(f"q7 kernel needs bias_shift >= 0 and out_shift >= 1, got {bias_shift}, {out_shift}")
    acc = np.rint(products).astype(np.int64)
    acc += (bias.astype(np.int64) << bias_shift) + (1 << (out_shift - 1))
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
        raise OverflowError("q7 kernel: int32 accumulator overflow; lower the frac bits of this layer")
    return ssat8(acc >> out_shift)


def fc_q7(x: np.ndarray, w: np.ndarray, bias: np.ndarray, bias_shift: int, out_shift: int) -> np.ndarray:
    """Fully connected (arm_fully_connected_q7): x (N, K) int8, w (O, K) int8 [out][in], bias (O,) int8
    -> (N, O) int8. x is the row-major flatten of the channels-last input."""
    x2 = x.reshape(x.shape[0], -1)
    return _requantize(x2.astype(np.float64) @ w.astype(np.float64).T, bias, bias_shift, out_shift)


def conv2d_q7(x: np.ndarray, w: np.ndarray, bias: np.ndarray, bias_shift: int, out_shift: int,
              stride: int = 1, padding: int = 0) -> np.ndarray:
    """2-D convolution (arm_convolve_HWC_q7_basic): x (N, H, W, Cin) int8, w (O, KH, KW, Cin) int8, bias (O,)
    -> (N, OH, OW, O) int8 with OH = (H + 2p - KH) // stride + 1; zero padding."""
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    out_ch, kh, kw, cin = w.shape
    windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # (N, OH, OW, Cin, KH, KW)
    n, oh, ow = windows.shape[:3]
    cols = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * cin)  # im2col, [kh][kw][cin]
    sums = cols.astype(np.float64) @ w.reshape(out_ch, -1).astype(np.float64).T
    return _requantize(sums, bias, bias_shift, out_shift).reshape(n, oh, ow, out_ch)


def conv1d_q7(x: np.ndarray, w: np.ndarray, bias: np.ndarray, bias_shift: int, out_shift: int,
              stride: int = 1, padding: int = 0) -> np.ndarray:
    """1-D convolution over steps: x (N, L, Cin) int8, w (O, K, Cin) int8 -> (N, OL, O) int8; it is conv2d_q7
    on a (N, 1, L, Cin) image with a 1 x K kernel, padded along the steps only."""
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (0, 0)))
    return conv2d_q7(x[:, None], w[:, None], bias, bias_shift, out_shift, stride)[:, 0]


def maxpool2d_q7(x: np.ndarray, kernel: int, stride: int | None = None) -> np.ndarray:
    """Max pooling (arm_maxpool_q7_HWC): x (N, H, W, C) int8 -> (N, (H-k)//s+1, (W-k)//s+1, C) int8;
    no requantization (output frac bits = input frac bits)."""
    stride = kernel if stride is None else stride
    windows = sliding_window_view(x, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]
    return windows.max(axis=(-2, -1))


def forward_q7(qmodel: "QuantizedModel", x_q: np.ndarray, upto: str | None = None) -> np.ndarray:
    """Run the int8 network on quantized inputs x_q (N, *input_shape): output of layer `upto` (pre-activation;
    int8, or int16 for a layer with out_bits 16), or the classifier's int8 logits when upto is None."""
    names = [layer.name for layer in qmodel.layers]
    if upto is not None and upto not in names:
        raise ValueError(f"unknown layer {upto!r}; choose one of: {', '.join(names)}")
    h = np.asarray(x_q, dtype=np.int8)
    for layer in qmodel.layers:
        if layer.relu_in:
            h = relu_q7(h)
        if layer.kind == "conv2d":
            h = conv2d_q7(h, layer.weights, layer.bias, layer.bias_shift, layer.out_shift, layer.stride,
                          layer.padding)
        elif layer.kind == "conv1d":
            h = conv1d_q7(h, layer.weights, layer.bias, layer.bias_shift, layer.out_shift, layer.stride,
                          layer.padding)
        elif layer.kind == "fc":
            h = fc_q7(h, layer.weights, layer.bias, layer.bias_shift, layer.out_shift)
        elif layer.kind == "maxpool2d":
            h = maxpool2d_q7(h, layer.kernel, layer.stride)
        elif layer.kind in ("lstm", "gru"):
            fn = intref_rnn.lstm_q7 if layer.kind == "lstm" else intref_rnn.gru_q7
            h = fn(h, layer.weights, layer.weights_h, layer.bias, layer.shift_x, layer.shift_h, layer.f_out,
                   layer.out_bits)
        else:
            raise NotImplementedError(f"q7 integer kernel for {layer.kind!r} ({layer.name}) is not implemented")
        if layer.name == upto:
            break
    return h
