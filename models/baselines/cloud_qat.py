"""Cloud-QAT (the paper's second baseline): upload all target data, train a new network for the target task with
quantization-aware training in the cloud, download the whole int8 network.

The new network is the device's deployment architecture: the zoo model's layers up to the cut (starting from their
pretrained source weights) and the MicroTL head shape (FC(F -> hidden), ReLU, FC(hidden -> classes), on the cut's
pre-activation output). All of it is trained with Adam on the whole target pool under q7 fake quantization
(fakequant.py; LSTM / GRU layers step by step on the recurrent formats, fakequant_rnn.py), converted with
models.quantize's q7 scheme and scored with the integer reference on the target test set, as the device would run
it. The downlink is every layer's parameters (headquant.int8_bytes).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data import TaskData
from ..network import Network, build, predict, single_thread
from ..quantize import agreement, calibrate, forward_int, quantize, quantize_input
from ..simulate import derive_seeds
from ..zoo import LayerSpec, ModelSpec
from .fakequant import qat_forward
from .headquant import int8_bytes

QAT_KINDS = ("conv2d", "conv1d", "maxpool2d", "fc", "lstm", "gru")


@dataclass(frozen=True)
class QATParams:
    """Cloud training: Adam on mini-batches of the whole target pool; activation ranges re-calibrated at the start
    of every epoch on up to `calib_samples` pool samples (the same samples calibrate the final conversion)."""

    epochs: int = 10
    batch: int = 32
    lr: float = 1e-3
    calib_samples: int = 2000


@dataclass(frozen=True)
class CloudQATResult:
    samples: int  # uploaded: the whole target pool
    accuracies: list[float]  # per repeat: the converted int8 network (integer reference), target test set
    float_accuracies: list[float]  # per repeat: the trained float network before conversion
    qat_agreements: list[float]  # per repeat: top-1 agreement of the fake-quantized forward with the int8 network
    link: Any  # cost_models.radio.LinkCost, priced by the board passed in (board.link)
    network_bytes: int  # downlink: int8 weights, biases and shifts of every layer
    notes: tuple[str, ...] = ()

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else 0.0


def device_spec(spec: ModelSpec, cut: str, hidden: int, classes: int) -> ModelSpec:
    """The network Cloud-QAT ships: `spec`'s layers up to `cut` (the cut without its ReLU, as MicroTL's head sees
    it), then the head (FC hidden with ReLU when hidden > 0) and a `classes`-way classifier."""
    layers = [spec.layers[0], *spec.layers_up_to(cut)]
    layers[-1] = replace(layers[-1], relu=False)
    shape = layers[-1].out_shape
    if hidden:
        layers.append(LayerSpec("head1", "fc", shape, (hidden,), relu=True))
        shape = (hidden,)
    classifier = LayerSpec("classifier", "fc", shape, (classes,))
    return ModelSpec(f"{spec.name}_qat_{cut}", f"{spec.name} to {cut} + head, for Cloud-QAT", spec.input_shape,
                     tuple(layers), classifier, spec.source_task)


def check_supported(spec: ModelSpec, cut: str) -> None:
    """NotImplementedError naming the first layer QAT cannot fake-quantize, or a cut whose int16 output would feed
    the int8 head (no q7 kernel takes it)."""
    layers = spec.layers_up_to(cut)
    for layer in layers:
        if layer.kind not in QAT_KINDS:
            raise NotImplementedError(f"Cloud-QAT: fake quantization of {layer.kind.upper()} layers "
                                      f"({spec.name}.{layer.name}) is not modelled; QAT covers "
                                      f"{', '.join(QAT_KINDS)}")
    if layers[-1].out_bits != 8:
        raise NotImplementedError(f"Cloud-QAT: cut {spec.name}.{cut} has int{layers[-1].out_bits} outputs; the "
                                  "head's q7 FC kernel takes int8 only")


def _new_network(source: Network, spec: ModelSpec, seed: int) -> Network:
    network = build(spec, seed)
    state = source.state_dict()
    own = network.state_dict()
    own.update({k: v for k, v in state.items() if k in own and own[k].shape == v.shape
                and k.split(".")[1] != "classifier"})
    network.load_state_dict(own)
    return network


def cloud_qat(source: Network, data: TaskData, cut: str, hidden: int, params: QATParams, repeats: int, seed: int,
              board, progress: Callable[[str], None] | None = None) -> CloudQATResult:
    """Cloud-QAT from the pretrained source network, `repeats` times (head init and batch order vary by repeat)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    check_supported(source.spec, cut)
    say = progress or (lambda message: None)
    spec = device_spec(source.spec, cut, hidden, data.target_classes)
    pool, test = data.target_pool, data.target_test
    rng = np.random.Generator(np.random.PCG64(seed))
    calib_x = pool.x[np.sort(rng.permutation(len(pool))[:params.calib_samples])]
    x, y = torch.from_numpy(pool.x), torch.from_numpy(pool.y)
    accuracies, float_accuracies, agreements, notes, network_bytes = [], [], [], [], 0
    for r in range(repeats):
        run_seed = derive_seeds(seed, r)[1]
        network = _new_network(source, spec, run_seed % 2**31)
        optimizer = torch.optim.Adam(network.parameters(), lr=params.lr)
        generator = torch.Generator().manual_seed(run_seed)
        with single_thread():
            for epoch in range(1, params.epochs + 1):
                say(f"Cloud-QAT repeat {r + 1}/{repeats}: epoch {epoch}/{params.epochs} on {len(pool)} samples")
                ranges = calibrate(network, calib_x)
                network.train()
                order = torch.randperm(len(y), generator=generator)
                for start in range(0, len(y), params.batch):
                    idx = order[start:start + params.batch]
                    optimizer.zero_grad()
                    F.cross_entropy(qat_forward(network, x[idx], ranges), y[idx]).backward()
                    optimizer.step()
        network.eval()
        qmodel = quantize(network, calib_x, "q7")
        logits = forward_int(qmodel, quantize_input(qmodel, test.x))
        accuracies.append(float((logits.argmax(1) == test.y).mean()))
        float_accuracies.append(float((predict(network, test.x).argmax(1) == test.y).mean()))
        agreements.append(agreement(_fake_logits(network, test.x, calib_x), logits))
        notes.extend(n for n in qmodel.notes if n not in notes)
        network_bytes = int8_bytes(qmodel)
    link = board.link(len(pool) * int(np.prod(data.input_shape)), network_bytes)
    return CloudQATResult(len(pool), accuracies, float_accuracies, agreements, link, network_bytes, tuple(notes))


@torch.no_grad()
def _fake_logits(network: Network, x: np.ndarray, calib_x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The fake-quantized forward (what training optimised) on float inputs x, ranges calibrated as converted."""
    ranges = calibrate(network, calib_x)
    network.eval()
    with single_thread():
        return np.concatenate([qat_forward(network, torch.from_numpy(x[s:s + batch]), ranges).numpy()
                               for s in range(0, len(x), batch)])
