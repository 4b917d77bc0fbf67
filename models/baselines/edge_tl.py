"""Edge-TL (the paper's first baseline): upload the N labelled raw samples, transfer-learn the head at the edge on
the unquantized network's float features at the cut, post-quantize the head to int8 (q7), download it.

The edge uses the MicroTL recipe (head shape, uniform init from models.head.init_head, per-epoch shuffle from
models.prng, SGD with momentum and weight decay, early stopping on the 10% validation part) in torch on float
features; every repeat draws the same samples as the matching MicroTL repeat (models.simulate.derive_seeds), so
the two differ only in where the head is trained and on which features. Accuracy is that of the device: its int8
network to the cut, then the post-quantized int8 head (models.intref), on the target test set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import prng
from ..data import TaskData, draw_samples
from ..feature_cache import cached_features, weights_hash
from ..head import Layers, SGDParams, init_head
from ..head import forward as head_forward
from ..network import Network, predict, single_thread
from ..quantize import QuantizedModel, forward_int, get_scheme
from ..simulate import derive_seeds
from .headquant import int8_bytes, quantize_head


@dataclass(frozen=True, eq=False)
class EdgeInputs:
    """What Edge-TL needs once per (network, cut): float features of the target pool (the edge computes them from
    the uploaded raw samples), the device's int8 features of the target test set, and their frac bits."""

    cut: str
    pool_float: np.ndarray  # (N, F) float32, unquantized network, pre-activation output at the cut
    y_pool: np.ndarray
    test_q: np.ndarray  # (M, F) int8, the device's integer network at the cut
    test_float: np.ndarray  # (M, F) float32, unquantized network (the edge's own view, for the float accuracy)
    y_test: np.ndarray
    f_cut: int  # frac bits of the device's int8 feature
    input_elements: int  # bytes of one raw int8 sample
    classes: int


@dataclass(frozen=True)
class EdgeTLResult:
    samples: int
    accuracies: list[float]  # per repeat: int8 network + post-quantized int8 head, target test set
    float_accuracies: list[float]  # per repeat: the float head on float features before post-quantization
    epochs: list[int]
    link: Any  # cost_models.radio.LinkCost, priced by the board passed in (board.link)
    head_bytes: int  # downlink: the int8 head with its shifts
    notes: tuple[str, ...] = ()

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else 0.0


def edge_inputs(network: Network, qmodel: QuantizedModel, data: TaskData, cut: str,
                cache_dir=None) -> EdgeInputs:
    f_cut, zero_point = get_scheme(qmodel.scheme).feature_params(qmodel, cut)
    if zero_point:
        raise ValueError(f"Edge-TL post-quantizes the head for symmetric int8 features; scheme {qmodel.scheme!r} "
                         f"has zero point {zero_point} at {cut}")
    pool_float = predict(network, data.target_pool.x, cut).reshape(len(data.target_pool), -1)
    test_float = predict(network, data.target_test.x, cut).reshape(len(data.target_test), -1)
    test = cached_features(qmodel, weights_hash(network), data, "target_test", cut, cache_dir)
    return EdgeInputs(cut, pool_float, data.target_pool.y, np.asarray(test.q), test_float, data.target_test.y,
                      f_cut, int(np.prod(data.input_shape)), data.target_classes)


def train_float_head(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, hidden: int,
                     classes: int, params: SGDParams, seed: int) -> tuple[Layers, int]:
    """The MicroTL head recipe on float features, in torch: (best weights by validation loss, epochs run)."""
    init = init_head(x.shape[1], hidden, classes, seed)
    tensors = [torch.tensor(a, requires_grad=True) for w, b in init for a in (w, b)]
    optimizer = torch.optim.SGD(tensors, lr=params.lr, momentum=params.momentum, weight_decay=params.decay)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(y)
    xv, yv = torch.from_numpy(np.ascontiguousarray(x_val, np.float32)), torch.from_numpy(y_val)

    def logits(inp):
        h = inp
        for i in range(0, len(tensors), 2):
            h = h @ tensors[i].T + tensors[i + 1]
            if i < len(tensors) - 2:
                h = F.relu(h)
        return h

    best = [t.detach().clone() for t in tensors]
    best_loss, best_epoch, epochs_run = float("inf"), 0, 0
    with single_thread():
        for epoch in range(1, params.epochs + 1):
            order = torch.from_numpy(prng.shuffle(seed, epoch, len(y)).astype(np.int64))
            for start in range(0, len(y), params.batch):
                idx = order[start:start + params.batch]
                optimizer.zero_grad()
                F.cross_entropy(logits(xt[idx]), yt[idx]).backward()
                optimizer.step()
            epochs_run = epoch
            if not len(y_val):
                continue
            with torch.no_grad():
                loss = float(F.cross_entropy(logits(xv), yv))
            if loss < best_loss:
                best_loss, best_epoch, best = loss, epoch, [t.detach().clone() for t in tensors]
            if epoch - best_epoch >= params.patience:
                break
    if not len(y_val):
        best = [t.detach().clone() for t in tensors]
    arrays = [t.numpy().astype(np.float32) for t in best]
    return [(arrays[i], arrays[i + 1]) for i in range(0, len(arrays), 2)], epochs_run


def edge_tl(inputs: EdgeInputs, samples: int, hidden: int, params: SGDParams, repeats: int, seed: int,
            board) -> EdgeTLResult:
    """Edge-TL with `samples` labelled samples, `repeats` times (the same draws and head seeds as MicroTL's)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    accuracies, float_accuracies, epochs, notes, head_bytes = [], [], [], [], 0
    for r in range(repeats):
        draw_seed, head_seed = derive_seeds(seed, r)
        train, val = draw_samples(inputs.y_pool, samples, draw_seed)
        layers, run = train_float_head(inputs.pool_float[train], inputs.y_pool[train], inputs.pool_float[val],
                                       inputs.y_pool[val], hidden, inputs.classes, params, head_seed)
        uploaded = inputs.pool_float[np.concatenate([train, val])]
        qhead = quantize_head(layers, inputs.f_cut, uploaded, name=f"edge_head_{inputs.cut}")
        logits = forward_int(qhead, inputs.test_q)
        accuracies.append(float((logits.argmax(1) == inputs.y_test).mean()))
        float_accuracies.append(float((head_forward(layers, inputs.test_float).argmax(1) == inputs.y_test).mean()))
        epochs.append(run)
        notes.extend(n for n in qhead.notes if n not in notes)
        head_bytes = int8_bytes(qhead)
    link = board.link(samples * inputs.input_elements, head_bytes)
    return EdgeTLResult(samples, accuracies, float_accuracies, epochs, link, head_bytes, tuple(notes))
