"""The random numbers of head training, defined so that C on the device reproduces them bit for bit.

A counter-based generator: value = mix32(mix32(mix32(seed) ^ stream) + index) with 32-bit wrap-around, where
mix32 is a published integer hash (Chris Wellons' "lowbias32"). No state is carried, so numpy computes a whole
array at once and the firmware computes element i on its own. Uses:
- head initialisation: stream INIT_STREAM + layer, index = row * fan_in + col;
- the shuffle of epoch e (1-based): stream SHUFFLE_STREAM + e, one key per training sample; the order is the
  samples sorted by (key, index).
"""
from __future__ import annotations

import numpy as np

INIT_STREAM = 0x1000
SHUFFLE_STREAM = 0x2000
_U32 = np.uint32


def mix32(x: np.ndarray) -> np.ndarray:
    """lowbias32: x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16 (mod 2^32)."""
    x = np.asarray(x, dtype=_U32).copy()
    x ^= x >> _U32(16)
    x *= _U32(0x7FEB352D)
    x ^= x >> _U32(15)
    x *= _U32(0x846CA68B)
    x ^= x >> _U32(16)
    return x


def rand_u32(seed: int, stream: int, index: np.ndarray) -> np.ndarray:
    """The generator's uint32 values for `index` (array) of (seed, stream)."""
    base = mix32(mix32(np.array([seed & 0xFFFFFFFF], _U32)) ^ _U32(stream & 0xFFFFFFFF))
    return mix32(base + np.asarray(index, dtype=_U32))


def uniform01(seed: int, stream: int, index: np.ndarray) -> np.ndarray:
    """float32 in [0, 1): (value >> 8) * 2^-24, exact in float32 (C: (float)(v >> 8) * 0x1p-24f)."""
    return (rand_u32(seed, stream, index) >> _U32(8)).astype(np.float32) * np.float32(2.0**-24)


def init_uniform(seed: int, layer: int, fan_out: int, fan_in: int) -> np.ndarray:
    """(fan_out, fan_in) float32 weights uniform in [-b, b), b = 1 / sqrtf(fan_in), each rounded once:
    C: w = (2.0f * u - 1.0f) * (1.0f / sqrtf((float)fan_in)) (2u - 1 is exact)."""
    u = uniform01(seed, INIT_STREAM + layer, np.arange(fan_out * fan_in)).reshape(fan_out, fan_in)
    bound = np.float32(1.0) / np.sqrt(np.float32(fan_in))
    return (np.float32(2.0) * u - np.float32(1.0)) * bound


def shuffle(seed: int, epoch: int, n: int) -> np.ndarray:
    """Order of the n training samples in `epoch` (1-based): indices sorted by (key, index)."""
    keys = rand_u32(seed, SHUFFLE_STREAM + epoch, np.arange(n))
    return np.lexsort((np.arange(n), keys))
