"""Post-training int8 quantization, dispatched by scheme name (Configuration.scheme).

Scheme "q7" (the paper's, CMSIS-NN legacy q7): symmetric min-max, power-of-two scales. Every tensor X gets
f = floor(log2(127 / max|X|)) fractional bits (f = 7 for an all-zero tensor) and q = clamp(floor(v * 2^f + 0.5),
-128, 127). Weights and biases use their own range; activations use the range of the float pre-activation outputs
of each layer over a calibration set (the source training split); the input uses the calibration input range.
Per conv/fc layer: bias_shift = f_in + f_w - f_b and out_shift = f_in + f_w - f_out. The kernels need
bias_shift >= 0 and out_shift >= 1: when the ranges would break that, f_b (resp. f_out) is lowered to the largest
valid value - a coarser scale, never a saturation - and a note is recorded in QuantizedModel.notes.
Maxpool keeps its input's frac bits; ReLU is applied on int8 by the consuming layer (QLayer.relu_in).
LSTM / GRU (models/intref_rnn.py, docs/fixed-point-rnn.md): int8 W_ih / W_hh with one scale each, int16 q3.12
biases, outputs int8 or int16 (the zoo's out_bits) with f_out = min(frac bits of the calibrated range, 15);
shift_x = f_in + f_w - 12, shift_h = f_out + f_wh - 12.

A further scheme (e.g. affine int8 with zero points and per-channel weights, as CMSIS-NN s8 / TFLite Micro) is a
new Scheme entry: its own quantize / quantize_input / forward / feature parameters.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from . import intref
from .network import Network, single_thread

MAX_SHIFT = 31  # a C shift of an int32 by more than 31 is undefined


@dataclass(frozen=True, eq=False)
class QLayer:
    """One quantized layer.

    weights layout (int8, C row-major): conv2d [out_ch][kh][kw][in_ch] (CMSIS-NN HWC), conv1d [out_ch][k][in_ch],
    fc [out][in] with `in` the row-major flatten of the channels-last input. maxpool2d has no weights.
    f_in / f_out: frac bits of the input and output activations; relu_in: apply ReLU to the input first (the
    producing layer has `relu`).
    """

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    relu_in: bool
    f_in: int
    f_out: int
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    f_w: int | None = None
    f_b: int | None = None
    bias_shift: int | None = None
    out_shift: int | None = None
    # lstm / gru only: weights is W_ih [gates*units][in], weights_h W_hh [gates*units][units] (int8, torch gate
    # order), bias int16 q3.12 (LSTM b_ih + b_hh; GRU [b_ih; b_hh]); in_bits / out_bits: activation widths
    weights_h: np.ndarray | None = None
    f_wh: int | None = None
    shift_x: int | None = None
    shift_h: int | None = None
    in_bits: int = 8
    out_bits: int = 8


@dataclass(frozen=True, eq=False)
class QuantizedModel:
    """Quantized frozen layers plus the source classifier (last), for one scheme."""

    model: str
    scheme: str
    input_shape: tuple[int, ...]
    f_input: int  # frac bits of the quantized input
    layers: tuple[QLayer, ...]
    notes: tuple[str, ...] = ()  # frac-bit adjustments made to keep the shifts valid

    def layer(self, name: str) -> QLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"unknown layer {name!r}; choose one of: {', '.join(l.name for l in self.layers)}")

    def frac_bits(self, cut: str) -> int:
        """Frac bits of the int8 output of layer `cut` (a stored feature: x = q / 2^f)."""
        return self.layer(cut).f_out


@dataclass(frozen=True)
class Scheme:
    name: str
    description: str
    quantize: Callable[[Network, np.ndarray], QuantizedModel]
    quantize_input: Callable[[QuantizedModel, np.ndarray], np.ndarray]
    forward: Callable[[QuantizedModel, np.ndarray, str | None], np.ndarray]
    feature_params: Callable[[QuantizedModel, str], tuple[int, int]]  # (frac_bits, zero_point) at a cut


_SCHEMES: dict[str, Scheme] = {}



def q7_weighted(name: str, w: np.ndarray, b: np.ndarray, f_in: int, out_range: float, notes: list[str]) -> dict:
    """The q7 fields of a conv/fc layer: frac bits of weights, biases and output from their ranges, kept valid for
    the kernels (bias_shift >= 0, out_shift >= 1: f_b / f_out lowered, which coarsens and never saturates, with
    a note), the shifts, and the int8 weights and biases. The one rule for the network and for quantized heads."""
    f_w, f_b, f_out = frac_bits(np.abs(w).max()), frac_bits(np.abs(b).max()), frac_bits(out_range)
    if f_b > f_in + f_w:
        notes.append(f"{name}: bias frac bits lowered {f_b} -> {f_in + f_w} (bias_shift >= 0)")
        f_b = f_in + f_w
    if f_out > f_in + f_w - 1:
        notes.append(f"{name}: output frac bits lowered {f_out} -> {f_in + f_w - 1} (out_shift >= 1)")
        f_out = f_in + f_w - 1
    bias_shift, out_shift = f_in + f_w - f_b, f_in + f_w - f_out
    if max(bias_shift, out_shift) > MAX_SHIFT:
        raise ValueError(f"q7: layer {name} needs a shift > {MAX_SHIFT} "
                         f"(bias_shift {bias_shift}, out_shift {out_shift}); its ranges are degenerate")
    return dict(f_out=f_out, weights=quantize_tensor(w, f_w), bias=quantize_tensor(b, f_b), f_w=f_w, f_b=f_b,
                bias_shift=bias_shift, out_shift=out_shift)

def register_scheme(scheme: Scheme) -> None:
    _SCHEMES[scheme.name] = scheme


def get_scheme(name: str) -> Scheme:
    try:
        return _SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown quantization scheme {name!r}; known: {', '.join(_SCHEMES)}") from None


def list_schemes() -> list[str]:
    return list(_SCHEMES)


def quantize(network: Network, calib_x: np.ndarray, scheme: str = "q7") -> QuantizedModel:
    """Quantize `network` with `scheme`, calibrating activation ranges on float inputs calib_x."""
    return get_scheme(scheme).quantize(network, calib_x)


def quantize_input(qmodel: QuantizedModel, x: np.ndarray) -> np.ndarray:
    """Float channels-last samples -> the int8 input of qmodel."""
    return get_scheme(qmodel.scheme).quantize_input(qmodel, x)


def forward_int(qmodel: QuantizedModel, x_q: np.ndarray, upto: str | None = None) -> np.ndarray:
    """Integer forward pass of any registered scheme (dispatch on qmodel.scheme)."""
    return get_scheme(qmodel.scheme).forward(qmodel, x_q, upto)


def agreement(logits_a: np.ndarray, logits_b: np.ndarray) -> float:
    """Top-1 agreement of two logit arrays (e.g. float network vs integer reference)."""
    return float((np.asarray(logits_a).argmax(1) == np.asarray(logits_b).argmax(1)).mean())


# ---- scheme "q7" -----------------------------------------------------------------------------------------------

def frac_bits(max_abs: float, bits: int = 8) -> int:
    """f = floor(log2(L / max_abs)) with L = 2^(bits-1) - 1 (127 for int8): the most fractional bits with
    max_abs * 2^f <= L; bits - 1 for max_abs == 0."""
    max_abs, top = float(max_abs), float(2 ** (bits - 1) - 1)
    if not max_abs > 0:
        return bits - 1
    f = math.floor(math.log2(top / max_abs))
    while max_abs * 2.0**f > top:  # guard against log2 rounding at exact powers of two
        f -= 1
    while max_abs * 2.0 ** (f + 1) <= top:
        f += 1
    return f


def quantize_tensor(v: np.ndarray, f: int) -> np.ndarray:
    """q = clamp(floor(v * 2^f + 0.5), -128, 127) as int8 (offline, in float64)."""
    return intref.ssat8(np.floor(np.asarray(v, dtype=np.float64) * 2.0**f + 0.5))


@torch.no_grad()
def calibrate(network: Network, calib_x: np.ndarray, batch: int = 1024) -> dict[str, float]:
    """max |pre-activation output| of every layer over calib_x, plus "input"."""
    network.eval()
    ranges = {"input": float(np.abs(calib_x).max()) if len(calib_x) else 0.0}
    with single_thread():
        for start in range(0, len(calib_x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(calib_x[start:start + batch], dtype=np.float32))
            for layer, out in network.layer_outputs(xb):
                ranges[layer.name] = max(ranges.get(layer.name, 0.0), float(out.abs().max()))
    return ranges


def quantize_q15_bias(v: np.ndarray) -> np.ndarray:
    """RNN biases in the gate format q3.12: ssat16(floor(v * 2^12 + 0.5)) as int16 (offline, float64)."""
    return np.clip(np.floor(np.asarray(v, dtype=np.float64) * 2.0**12 + 0.5), -32768, 32767).astype(np.int16)


def _quantize_rnn(spec, params, f_prev: int, in_bits: int, f_out_range: float, notes: list, common: dict) -> QLayer:
    """One lstm/gru layer (formats in models/intref_rnn.py)."""
    w_ih, w_hh, b_ih, b_hh = params
    f_wx, f_wh = frac_bits(np.abs(w_ih).max()), frac_bits(np.abs(w_hh).max())
    f_out = frac_bits(f_out_range, spec.out_bits)
    if f_out > 15:
        notes.append(f"{spec.name}: output frac bits capped {f_out} -> 15 (the gates' q0.15 resolution)")
        f_out = 15
    f_out = max(f_out, 0)
    bias = quantize_q15_bias(b_ih + b_hh) if spec.kind == "lstm" else quantize_q15_bias(np.concatenate([b_ih, b_hh]))
    b_real = (b_ih + b_hh) if spec.kind == "lstm" else np.concatenate([b_ih, b_hh])
    if np.abs(b_real).max() >= 8:
        notes.append(f"{spec.name}: biases beyond +-8 saturate in q3.12")
    shift_x, shift_h = f_prev + f_wx - 12, f_out + f_wh - 12
    return QLayer(f_out=f_out, weights=quantize_tensor(w_ih, f_wx), weights_h=quantize_tensor(w_hh, f_wh),
                  bias=bias, f_w=f_wx, f_wh=f_wh, f_b=12, shift_x=shift_x, shift_h=shift_h, in_bits=in_bits,
                  out_bits=spec.out_bits, **common)


def quantize_q7(network: Network, calib_x: np.ndarray) -> QuantizedModel:
    ranges = calibrate(network, calib_x)
    params = network.export()
    rnn_params = network.export_rnn()
    f_prev, relu_prev, bits_prev = frac_bits(ranges["input"]), False, 8
    f_input = f_prev
    layers, notes = [], []
    for spec in network.layer_specs:
        common = dict(name=spec.name, kind=spec.kind, in_shape=spec.in_shape, out_shape=spec.out_shape,
                      relu_in=relu_prev, f_in=f_prev, kernel=spec.kernel, stride=spec.stride, padding=spec.padding)
        if spec.kind in ("lstm", "gru"):
            layer = _quantize_rnn(spec, rnn_params[spec.name], f_prev, bits_prev, ranges[spec.name], notes, common)
            layers.append(layer)
            f_prev, relu_prev, bits_prev = layer.f_out, spec.relu, spec.out_bits
            continue
        if bits_prev != 8 or spec.out_bits != 8:
            raise NotImplementedError(f"q7: {spec.kind} layer {spec.name} with int16 input or output has no kernel")
        if spec.kind == "maxpool2d":
            layer = QLayer(f_out=f_prev, **common)
        else:
            w, b = params[spec.name]
            layer = QLayer(**q7_weighted(spec.name, w, b, f_prev, ranges[spec.name], notes), **common)
        layers.append(layer)
        f_prev, relu_prev, bits_prev = layer.f_out, spec.relu, 8
    return QuantizedModel(network.spec.name, "q7", tuple(network.spec.input_shape), f_input, tuple(layers),
                          tuple(notes))


register_scheme(Scheme(
    name="q7",
    description="symmetric int8, power-of-two scales, bias/output shifts (CMSIS-NN legacy q7; the paper's)",
    quantize=quantize_q7,
    quantize_input=lambda qmodel, x: intref.quantize_input(x, qmodel.f_input),
    forward=intref.forward_q7,
    feature_params=lambda qmodel, cut: (qmodel.frac_bits(cut), 0),
))
