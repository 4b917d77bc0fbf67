"""The float network of a zoo ModelSpec, in torch, with channels-last inputs and outputs.

Activations stay channels-last between layers (torch ops are wrapped in permutes) so that every intermediate
tensor, every flatten and every exported weight has the layout of the integer reference and the firmware.
Semantics (zoo docstring): conv/fc outputs are pre-activation; the next layer sees relu(output) if `relu`.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .zoo import LayerSpec, ModelSpec


def _module(layer: LayerSpec) -> nn.Module | None:
    cin = layer.in_shape[-1]
    if layer.kind == "conv2d":
        return nn.Conv2d(cin, layer.units, layer.kernel, layer.stride, layer.padding)
    if layer.kind == "conv1d":
        return nn.Conv1d(cin, layer.units, layer.kernel, layer.stride, layer.padding)
    if layer.kind == "fc":
        return nn.Linear(int(np.prod(layer.in_shape)), layer.units)
    if layer.kind == "lstm":
        return nn.LSTM(cin, layer.units, batch_first=True)
    if layer.kind == "gru":
        return nn.GRU(cin, layer.units, batch_first=True)
    if layer.kind == "maxpool2d":
        return None
    raise ValueError(f"layer {layer.name!r}: unknown kind {layer.kind!r}")


class Network(nn.Module):
    """Frozen layers of `spec` plus its source classifier."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.layer_specs = list(spec.layers[1:]) + [spec.classifier]
        self.blocks = nn.ModuleDict()
        for layer in self.layer_specs:
            module = _module(layer)
            if module is not None:
                self.blocks[layer.name] = module

    def _layer(self, layer: LayerSpec, x: torch.Tensor) -> torch.Tensor:
        kind = layer.kind
        if kind == "conv2d":
            return self.blocks[layer.name](x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        if kind == "conv1d":
            return self.blocks[layer.name](x.permute(0, 2, 1)).permute(0, 2, 1)
        if kind == "maxpool2d":
            return F.max_pool2d(x.permute(0, 3, 1, 2), layer.kernel, layer.stride).permute(0, 2, 3, 1)
        if kind == "fc":
            return self.blocks[layer.name](x.reshape(x.shape[0], -1))  # row-major flatten of HWC
        if kind in ("lstm", "gru"):
            return self.blocks[layer.name](x)[0]
        raise ValueError(f"layer {layer.name!r}: unknown kind {kind!r}")

    def layer_outputs(self, x: torch.Tensor) -> Iterator[tuple[LayerSpec, torch.Tensor]]:
        """(layer, pre-activation output, channels-last) for every layer, classifier last."""
        h = x
        for layer in self.layer_specs:
            out = self._layer(layer, h)
            yield layer, out
            h = F.relu(out) if layer.relu else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Source-classifier logits of channels-last input x."""
        for _, out in self.layer_outputs(x):
            pass
        return out

    def forward_to(self, x: torch.Tensor, cut: str) -> torch.Tensor:
        """Pre-activation output (channels-last) of layer `cut`."""
        self.spec.check_cut(cut)
        for layer, out in self.layer_outputs(x):
            if layer.name == cut:
                return out
        raise AssertionError("unreachable")

    def export(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Float weights and biases of conv/fc layers in the firmware layout.

        conv2d: [out_ch][kh][kw][in_ch] (CMSIS-NN HWC); conv1d: [out_ch][k][in_ch]; fc: [out][in] with `in`
        the row-major flatten of the channels-last input.
        """
        params = {}
        for layer in self.layer_specs:
            if layer.kind not in ("conv2d", "conv1d", "fc"):
                continue
            module = self.blocks[layer.name]
            w = module.weight.detach().cpu().numpy()
            if layer.kind == "conv2d":
                w = w.transpose(0, 2, 3, 1)
            elif layer.kind == "conv1d":
                w = w.transpose(0, 2, 1)
            params[layer.name] = (np.ascontiguousarray(w, dtype=np.float32),
                                  module.bias.detach().cpu().numpy().astype(np.float32))
        return params

    def export_rnn(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Float (w_ih, w_hh, b_ih, b_hh) of lstm/gru layers as torch stores them: w_ih [gates*units][in],
        w_hh [gates*units][units], gate blocks in torch order (LSTM i, f, g, o; GRU r, z, n)."""
        params = {}
        for layer in self.layer_specs:
            if layer.kind in ("lstm", "gru"):
                m = self.blocks[layer.name]
                params[layer.name] = tuple(getattr(m, name).detach().cpu().numpy().astype(np.float32)
                                           for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
        return params


@contextmanager
def single_thread():
    """Run torch on one thread: these networks are too small to gain from more, a busy second core makes two
    threads several times slower, and a fixed thread count keeps float results reproducible."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def build(spec: ModelSpec, seed: int = 0) -> Network:
    """A freshly initialised network; initialisation is seeded without touching torch's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Network(spec)


@torch.no_grad()
def predict(network: Network, x: np.ndarray, cut: str | None = None, batch: int = 1024) -> np.ndarray:
    """Float32 numpy output for numpy input: logits, or the pre-activation output at `cut`."""
    network.eval()
    outs = []
    with single_thread():
        for start in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[start:start + batch], dtype=np.float32))
            outs.append((network(xb) if cut is None else network.forward_to(xb, cut)).numpy())
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)
