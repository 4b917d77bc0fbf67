"""Post-training quantization of a float head to the q7 scheme, for the Edge-TL baseline.

The head's input is the device's own int8 feature at the cut, so its input frac bits are fixed by the device's
quantized network (not re-calibrated); weights, biases and outputs follow models.quantize's q7 rules
(f = floor(log2(127 / max|X|)), f_b lowered to keep bias_shift >= 0, f_out lowered to keep out_shift >= 1).
The result is a models.quantize.QuantizedModel, so models.intref runs it exactly as the C kernels would.
"""
from __future__ import annotations

import numpy as np

from ..quantize import QLayer, QuantizedModel, q7_weighted

Layers = list[tuple[np.ndarray, np.ndarray]]


def _forward_ranges(layers: Layers, x: np.ndarray) -> list[float]:
    """max |pre-activation output| of each layer over float inputs x."""
    ranges, h = [], x
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        ranges.append(float(np.abs(h).max()) if h.size else 0.0)
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return ranges


def quantize_head(layers: Layers, f_in: int, calib_x: np.ndarray, name: str = "head") -> QuantizedModel:
    """q7 model of a float head [(W (out, in), b (out,)), ...] (ReLU between layers) taking int8 inputs with
    `f_in` frac bits; output ranges are calibrated on float inputs calib_x (the edge's uploaded samples)."""
    ranges = _forward_ranges(layers, calib_x)
    qlayers, notes, f_prev = [], [], f_in
    for i, ((w, b), out_range) in enumerate(zip(layers, ranges)):
        lname = "classifier" if i == len(layers) - 1 else f"head{i + 1}"
        fields = q7_weighted(lname, w, b, f_prev, out_range, notes)
        qlayers.append(QLayer(name=lname, kind="fc", in_shape=(w.shape[1],), out_shape=(w.shape[0],),
                              relu_in=i > 0, f_in=f_prev, **fields))
        f_prev = fields["f_out"]
    return QuantizedModel(name, "q7", (layers[0][0].shape[1],), f_in, tuple(qlayers), tuple(notes))


def int8_bytes(qmodel: QuantizedModel, shift_bytes: int = 2) -> int:
    """Bytes to ship a q7 model: its weights (int8) and biases (int8; int16 q3.12 in LSTM / GRU layers), plus one
    byte per layer constant: `shift_bytes` for a conv/fc layer (its bias and output shifts), 3 for an LSTM / GRU
    layer (shift_x, shift_h, f_out)."""
    total = 0
    for layer in qmodel.layers:
        if layer.weights is None:
            continue
        if layer.kind in ("lstm", "gru"):
            total += layer.weights.size + layer.weights_h.size + layer.bias.nbytes + 3
        else:
            total += layer.weights.size + layer.bias.size + shift_bytes
    return total
