"""Latency: cycles of each phase as a linear function of operation counts.

cycles(phase) = sum_k coefficient_k x count_k. The counts follow from the workload (facts); the coefficients
(cycles per operation) come only from calibration records. Counts are listed in identification priority:
when records cannot separate two counts, the earlier one carries the cycles (see `fitting.select_identifiable`).
"""
from __future__ import annotations

from math import ceil

from cost_models.workload import Workload
from vocabulary.phases import DEVICE_PHASES

MAC_KINDS = ("conv2d", "conv1d", "fc", "lstm", "gru")

COUNTS = {
    # N forward passes of the frozen int8 network up to the cut
    "collection": (*(f"macs_{kind}" for kind in MAC_KINDS), "output_elements", "compares", "input_elements"),
    # epochs x (forward + backward of the training set, forward of the validation set, one update per batch)
    "training": ("head_macs", "parameter_updates", "dequantized_elements"),
}


def collection_counts(w: Workload) -> dict[str, float]:
    """Operations to collect all samples: per layer kind MACs, written outputs, compares, quantized inputs."""
    counts = dict.fromkeys(COUNTS["collection"], 0.0)
    for layer in w.layers[1:]:
        if layer.kind in MAC_KINDS:
            counts[f"macs_{layer.kind}"] += layer.macs
        counts["output_elements"] += layer.elements
        counts["compares"] += layer.compares
    counts["input_elements"] = float(w.input_elements)
    return {k: v * w.samples for k, v in counts.items()}


def training_counts(w: Workload, epochs: float) -> dict[str, float]:
    """Operations of `epochs` epochs of mini-batch SGD on the head.

    Per training sample: forward (M MACs), weight gradients (M) and input gradients of every layer but the first
    (the stored features need none). Per validation sample: forward only. One parameter update per batch.
    """
    forward = w.head_macs
    input_grads = sum(i * o for i, o in w.head[1:])
    batches = ceil(w.train_samples / w.batch)
    return {
        "head_macs": epochs * (w.train_samples * (2 * forward + input_grads) + w.val_samples * forward),
        "parameter_updates": epochs * batches * w.head_params,
        "dequantized_elements": epochs * w.samples * w.feature_elements,
    }


def phase_counts(phase: str, w: Workload, epochs: float) -> dict[str, float]:
    if phase == "collection":
        return collection_counts(w)
    if phase == "training":
        return training_counts(w, epochs)
    raise ValueError(f"unknown phase {phase!r}; phases: {', '.join(DEVICE_PHASES)}")


def cycles(counts: dict[str, float], coefficients: dict[str, float]) -> float:
    return sum(coefficients.get(k, 0.0) * n for k, n in counts.items())
