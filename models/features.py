"""Features: the int8 outputs at a cut point that the device stores, and their dequantization for training."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .quantize import QuantizedModel, forward_int, get_scheme, quantize_input


@dataclass(frozen=True, eq=False)
class Features:
    """q: (N, feature_bytes) int8, the row-major flatten of the channels-last cut output.
    Real value x = (q - zero_point) / 2^frac_bits (zero_point is 0 for symmetric schemes, the paper's q-shift)."""

    q: np.ndarray
    frac_bits: int
    zero_point: int = 0

    def __len__(self) -> int:
        return len(self.q)

    @property
    def scale(self) -> float:
        return 2.0 ** -self.frac_bits

    def subset(self, idx: np.ndarray) -> "Features":
        return Features(self.q[idx], self.frac_bits, self.zero_point)


def extract(qmodel: QuantizedModel, x_float: np.ndarray, cut: str, batch: int = 512) -> Features:
    """Quantize float samples, run the integer network to `cut` and keep its int8 output (batched for memory)."""
    frac, zero_point = get_scheme(qmodel.scheme).feature_params(qmodel, cut)
    parts = [forward_int(qmodel, quantize_input(qmodel, x_float[s:s + batch]), upto=cut).reshape(
        min(batch, len(x_float) - s), -1) for s in range(0, len(x_float), batch)]
    size = int(np.prod(qmodel.layer(cut).out_shape))
    q = np.concatenate(parts) if parts else np.zeros((0, size), np.int8)
    return Features(q, frac, zero_point)


def dequantize(features: Features) -> np.ndarray:
    """float32 (q - zero_point) * 2^-frac_bits: exact (int8 times a power of two), as the device computes it."""
    q = features.q.astype(np.float32)
    if features.zero_point:
        q -= np.float32(features.zero_point)
    return q * np.float32(features.scale)
