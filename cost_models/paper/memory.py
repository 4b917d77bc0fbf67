"""Memory: peak RAM and flash as sums of named terms.

The firmware allocates statically, so the peak is a sum. Each term's byte count follows from data-type widths
(facts, not coefficients). A calibration scales each term to say how measured firmware differs from the byte
count; constant terms (`runtime_reserve`, `code`) are a unit column whose scale is the fitted size in bytes.
"""
from __future__ import annotations

from cost_models.workload import Workload

FLOAT32 = 4  # bytes: the head, its optimizer state and dequantized batches are float32
INT8 = 1  # bytes: frozen weights, staged features

# Listed in identification priority: when records cannot separate two terms, the earlier one carries the bytes
# (physical terms before constants; the head's weights before the optimizer state a figure may leave out).
RAM_TERMS = (
    "sample_store",  # N stored features: the per-sample slope, never fitted
    "head_weights",  # float32 weights + biases of the head
    "optimizer_state",  # float32 gradient accumulators (+ momentum velocity) per parameter
    "batch_buffer",  # float32 dequantized batch plus the head's per-batch activations and gradients
    "input_buffer",  # one raw sample staged as float32 before input quantization
    "activation_buffers",  # frozen network int8 ping-pong buffers up to the cut
    "runtime_reserve",  # constant: stack, heap, runtime
)
FLASH_TERMS = (
    "frozen_weights",  # int8 weights + biases of the layers up to the cut; nothing past the cut is linked
    "code",  # constant: kernels, runtime, application
)
CONSTANT_TERMS = frozenset({"runtime_reserve", "code"})
FIXED_TERMS = frozenset({"sample_store"})  # scale 1 by construction: the store is exactly N x feature bytes
TERMS = {"ram": RAM_TERMS, "flash": FLASH_TERMS}


def ram_bytes(w: Workload) -> dict[str, int]:
    """Allocated bytes per RAM term (constant terms: 1, the unit their fitted scale multiplies)."""
    layers = w.layers
    activation = max((a.bytes + b.bytes for a, b in zip(layers, layers[1:])), default=0)
    params = w.head_params
    head_outputs = sum(o for _, o in w.head)
    raw = {
        "sample_store": w.samples * w.feature_bytes,
        "head_weights": params * FLOAT32,
        "optimizer_state": params * FLOAT32 * (2 if w.momentum else 1),
        "batch_buffer": min(w.batch, max(1, w.train_samples)) * (w.feature_elements + 2 * head_outputs) * FLOAT32,
        "input_buffer": w.input_elements * FLOAT32,
        "activation_buffers": activation,
        "runtime_reserve": 1,
    }
    return {term: raw[term] for term in RAM_TERMS}


def flash_bytes(w: Workload) -> dict[str, int]:
    """Allocated bytes per flash term (constant terms: 1)."""
    frozen = sum(layer.weights * INT8 + layer.biases * w.bias_bytes for layer in w.layers)
    return {"frozen_weights": frozen, "code": 1}


def default_scale(term: str) -> float:
    """Scale of a term no calibration covers: as allocated (1), or 0 bytes for an unknown constant."""
    return 0.0 if term in CONSTANT_TERMS else 1.0


def scaled(raw: dict[str, int], scales: dict[str, float]) -> dict[str, int]:
    """Bytes per term after calibration, in whole bytes (so totals are exact integer sums)."""
    return {term: round(n * scales.get(term, default_scale(term))) for term, n in raw.items()}
