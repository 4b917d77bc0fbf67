"""Fake-quantized LSTM and GRU for quantization-aware training: the recurrence run step by step in torch, on the
grids of the integer reference (models/intref_rnn.py, docs/fixed-point-rnn.md), so that training sees what the
device will compute.

Modelled, with straight-through gradients (zero outside a saturating range):
- W_ih, W_hh on the int8 grid with one power-of-two scale each (the q7 weight rule);
- biases on the q3.12 int16 grid (LSTM: b_ih + b_hh as one tensor, as the converter stores it);
- each dot product rounded to q3.12 on its own (x part, h part), as the kernels' rounding shifts do, and every
  gate pre-activation saturated to int16 q3.12 (+-8); the GRU's r * (W_hn h + b_hn) rounded to q3.12 likewise;
- the LSTM cell state on the q4.11 int16 grid (+-16);
- the hidden output, which is also the state read back at the next step, on the layer's int8 / int16 grid with
  f_out frac bits.
Not modelled (too small to matter for training): the sigmoid / tanh tables (at most 2 and 4 LSB of q0.15), the
q0.15 rounding of the gate products inside the cell and state updates (2^-15), and ties (torch rounds half to even,
the kernels half up).
The parameters are the network's own nn.LSTM / nn.GRU tensors, so models.quantize converts the trained network
unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from ..intref_rnn import CELL_FRAC, GATE_FRAC
from ..quantize import frac_bits


def fake_q(x: torch.Tensor, f: int, bits: int) -> torch.Tensor:
    """x on the signed `bits`-bit grid with f fractional bits (saturating); straight-through gradient inside."""
    return torch.fake_quantize_per_tensor_affine(x, 2.0 ** -f, 0, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def round_q12(x: torch.Tensor) -> torch.Tensor:
    """A dot product brought to q3.12 by the kernels' rounding shift: rounded, still int32 (saturation comes
    after the sum)."""
    return fake_q(x, GATE_FRAC, 32)


def gate(x: torch.Tensor) -> torch.Tensor:
    """A gate pre-activation: int16-saturated q3.12."""
    return fake_q(x, GATE_FRAC, 16)


def rnn_f_out(out_range: float, out_bits: int) -> int:
    """Frac bits of a recurrent layer's output as models.quantize chooses them: the calibrated range at the
    layer's width, capped to [0, 15]."""
    return max(min(frac_bits(out_range, out_bits), 15), 0)


def rnn_formats(module: nn.LSTM | nn.GRU, out_range: float, out_bits: int) -> tuple[int, int, int]:
    """(f_wx, f_wh, f_out): weights by their current range (the q7 rule), the output by rnn_f_out."""
    f_wx = frac_bits(float(module.weight_ih_l0.detach().abs().max()))
    f_wh = frac_bits(float(module.weight_hh_l0.detach().abs().max()))
    return f_wx, f_wh, rnn_f_out(out_range, out_bits)


def _weights(module, f_wx: int, f_wh: int):
    return fake_q(module.weight_ih_l0, f_wx, 8), fake_q(module.weight_hh_l0, f_wh, 8)


def qat_lstm(module: nn.LSTM, x: torch.Tensor, out_range: float, out_bits: int) -> torch.Tensor:
    """Fake-quantized hidden sequence (N, T, H) of an LSTM on fake-quantized x (N, T, in)."""
    f_wx, f_wh, f_out = rnn_formats(module, out_range, out_bits)
    w_ih, w_hh = _weights(module, f_wx, f_wh)
    bias = fake_q(module.bias_ih_l0 + module.bias_hh_l0, GATE_FRAC, 16)
    ax = round_q12(x @ w_ih.T)  # the x parts of all steps at once
    n, steps, _ = x.shape
    h = x.new_zeros((n, module.hidden_size))
    c = x.new_zeros((n, module.hidden_size))
    out = []
    for t in range(steps):
        pre = gate(ax[:, t] + round_q12(h @ w_hh.T) + bias)
        i, f, g, o = pre.chunk(4, dim=1)
        c = fake_q(torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g), CELL_FRAC, 16)
        h = fake_q(torch.sigmoid(o) * torch.tanh(c), f_out, out_bits)
        out.append(h)
    return torch.stack(out, dim=1)


def qat_gru(module: nn.GRU, x: torch.Tensor, out_range: float, out_bits: int) -> torch.Tensor:
    """Fake-quantized hidden sequence (N, T, H) of a GRU (torch's: r applied to W_hn h + b_hn)."""
    f_wx, f_wh, f_out = rnn_formats(module, out_range, out_bits)
    w_ih, w_hh = _weights(module, f_wx, f_wh)
    b_i, b_h = fake_q(module.bias_ih_l0, GATE_FRAC, 16), fake_q(module.bias_hh_l0, GATE_FRAC, 16)
    units = module.hidden_size
    ax = round_q12(x @ w_ih.T)
    n, steps, _ = x.shape
    h = x.new_zeros((n, units))
    out = []
    for t in range(steps):
        axt, ah = ax[:, t], round_q12(h @ w_hh.T)
        rz = gate(axt[:, :2 * units] + ah[:, :2 * units] + b_i[:2 * units] + b_h[:2 * units])
        r, z = torch.sigmoid(rz).chunk(2, dim=1)
        hn = gate(ah[:, 2 * units:] + b_h[2 * units:])
        g = torch.tanh(gate(axt[:, 2 * units:] + b_i[2 * units:] + round_q12(r * hn)))
        h = fake_q((1 - z) * g + z * h, f_out, out_bits)
        out.append(h)
    return torch.stack(out, dim=1)
