"""Fake quantization for quantization-aware training in the q7 scheme (power-of-two, symmetric, per tensor).

fake_q7(x, f) rounds to the int8 grid of step 2^-f and saturates to [-128, 127] steps, with a straight-through
gradient inside the range (torch.fake_quantize_per_tensor_affine). qat_forward runs a zoo Network the way its q7
integer version will run: fake-quantized input, weights, biases and pre-activation outputs, with frac bits chosen
by the same rules as models.quantize.quantize_q7 (weights and biases from their current range, activations from a
calibration pass, f_b <= f_in + f_w, f_out <= f_in + f_w - 1), so the network learns to live with the grid it
will be converted to. LSTM and GRU layers run step by step on the recurrent formats (fakequant_rnn.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..network import Network
from ..quantize import frac_bits
from .fakequant_rnn import qat_gru, qat_lstm, rnn_f_out


def fake_q7(x: torch.Tensor, f: int) -> torch.Tensor:
    """x on the q7 grid with f fractional bits (values q / 2^f, q in [-128, 127]); straight-through gradient."""
    return torch.fake_quantize_per_tensor_affine(x, 2.0 ** -f, 0, -128, 127)


def qat_forward(network: Network, x: torch.Tensor, ranges: dict[str, float]) -> torch.Tensor:
    """Fake-quantized logits of channels-last x; `ranges` holds max |pre-activation| per layer and "input"
    (models.quantize.calibrate). Conv2d, conv1d, maxpool2d, fc, lstm and gru layers; int16 activations only
    between recurrent layers (as the q7 kernels)."""
    f_prev = frac_bits(ranges["input"])
    h = fake_q7(x, f_prev)
    relu_prev, bits_prev = False, 8
    for layer in network.layer_specs:
        if relu_prev:
            h = F.relu(h)  # ReLU of a value on the grid stays on it
        if layer.kind in ("lstm", "gru"):
            qat_rnn = qat_lstm if layer.kind == "lstm" else qat_gru
            h = qat_rnn(network.blocks[layer.name], h, ranges[layer.name], layer.out_bits)
            f_prev = rnn_f_out(ranges[layer.name], layer.out_bits)
        elif bits_prev != 8 or layer.out_bits != 8:
            raise NotImplementedError(f"{layer.kind} layer {layer.name} with int16 input or output has no q7 kernel")
        elif layer.kind == "maxpool2d":
            h = F.max_pool2d(h.permute(0, 3, 1, 2), layer.kernel, layer.stride).permute(0, 2, 3, 1)
        elif layer.kind in ("conv2d", "conv1d", "fc"):
            module = network.blocks[layer.name]
            f_w = frac_bits(float(module.weight.detach().abs().max()))
            f_b = min(frac_bits(float(module.bias.detach().abs().max())), f_prev + f_w)
            f_out = min(frac_bits(ranges[layer.name]), f_prev + f_w - 1)
            w, b = fake_q7(module.weight, f_w), fake_q7(module.bias, f_b)
            if layer.kind == "conv2d":
                out = F.conv2d(h.permute(0, 3, 1, 2), w, b, layer.stride, layer.padding).permute(0, 2, 3, 1)
            elif layer.kind == "conv1d":
                out = F.conv1d(h.permute(0, 2, 1), w, b, layer.stride, layer.padding).permute(0, 2, 1)
            else:
                out = F.linear(h.reshape(h.shape[0], -1), w, b)
            h, f_prev = fake_q7(out, f_out), f_out
        else:
            raise NotImplementedError(f"fake quantization of {layer.kind.upper()} layers ({layer.name}) is not "
                                      "modelled: QAT covers conv2d, conv1d, maxpool2d, fc, lstm and gru")
        relu_prev, bits_prev = layer.relu, layer.out_bits
    return h
