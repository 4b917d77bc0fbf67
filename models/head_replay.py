"""The firmware's head training replayed in Python, operation for operation: the same float32 results, bit for bit.

models.head trains the head with the same algorithm, random numbers and update rule as the firmware, but its
batched torch matmuls add their products in BLAS's order. That is the right trade for a study (50 repeats in
lockstep, fast), and statistically it is the same training. For one draw, though, the last-bit differences grow
over the epochs of SGD; on chaotic configurations (high learning rate, tiny validation set) the two runs end in
different epochs with accuracies several points apart. Validation compares a board with the simulation of the same
draw, and that comparison should test the firmware, not float summation order: so this module follows
firmware/c/microtl.c exactly. Every sum runs in the C loops' order (np.add.accumulate is a sequential float32
loop), every expression is rounded where C rounds it (the firmware is compiled with -ffp-contract=off: no fused
multiply-add), and exp/log are the firmware's own mt_expf/mt_logf, transcribed.

It is slower than models.head (one head, numpy), about a second for a quickstart pick, so it runs only where one
draw matters: code generation for validation.
"""
from __future__ import annotations

import numpy as np

from . import prng
from .features import Features
from .head import Layers, SGDParams, TrainResult

F32 = np.float32
_LN2_HI = F32(float.fromhex("0x1.62e400p-1"))
_LN2_LO = F32(float.fromhex("0x1.7f7d1cp-20"))
_INV_LN2 = F32(float.fromhex("0x1.715476p+0"))
_EXP_HI = F32(88.72284)  # C literals 88.72284f, -103.97208f, 1.41421356f (each exactly one float32)
_EXP_LO = F32(-103.97208)
_SQRT2 = F32(1.41421356)


def _recip(n: float) -> np.float32:
    """C's 1.0f / nf, folded by the compiler in float32."""
    return F32(1.0) / F32(n)


_EXP_C = [_recip(5040.0), _recip(720.0), _recip(120.0), _recip(24.0), _recip(6.0)]
_LOG_C = [F32(2.0) / F32(d) for d in (3.0, 5.0, 7.0, 9.0, 11.0)]


def _pow2i(n: np.ndarray) -> np.ndarray:
    """2^n for -126 <= n <= 127 from the exponent bits (mt_pow2i); other n are clamped (their lanes are unused)."""
    return ((np.clip(n, -126, 127).astype(np.int32) + 127) << 23).astype(np.uint32).view(F32)


def expf(x: np.ndarray) -> np.ndarray:
    """mt_expf of a float32 array."""
    x = np.asarray(x, F32)
    with np.errstate(over="ignore", invalid="ignore"):
        t = x * _INV_LN2
        k = np.trunc(np.where(t < 0, t - F32(0.5), t + F32(0.5)))
        k = np.where(np.isfinite(k), k, F32(0)).astype(np.int32)  # (int) of the lanes that are returned early
        kf = k.astype(F32)
        r = (x - kf * _LN2_HI) - kf * _LN2_LO
        p = r * _EXP_C[0] + _EXP_C[1]
        for c in (_EXP_C[2], _EXP_C[3], _EXP_C[4], F32(0.5)):
            p = p * r + c
        p = r + (r * r) * p
        t = F32(1.0) + p
        out = np.where(k > 127, t * _pow2i(np.full_like(k, 127)) * _pow2i(k - 127),
                       np.where(k < -126, t * _pow2i(np.full_like(k, -126)) * _pow2i(k + 126), t * _pow2i(k)))
    out = np.where(x < _EXP_LO, F32(0.0), out)
    out = np.where(x > _EXP_HI, F32(np.inf), out)
    return np.where(x != x, x, out).astype(F32)


def logf(x: np.ndarray) -> np.ndarray:
    """mt_logf of a float32 array."""
    x = np.asarray(x, F32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sub = x.view(np.uint32) < 0x00800000
        u = np.where(sub, x * F32(2.0**25), x).view(np.uint32)
        e = np.where(sub, -25, 0) + (u >> 23).astype(np.int32) - 127
        m = ((u & np.uint32(0x007FFFFF)) | np.uint32(0x3F800000)).view(F32)
        big = m > _SQRT2
        m = np.where(big, m * F32(0.5), m)
        e = e + big
        f = m - F32(1.0)
        s = f / (F32(2.0) + f)
        z = s * s
        R = z * (_LOG_C[0] + z * (_LOG_C[1] + z * (_LOG_C[2] + z * (_LOG_C[3] + z * _LOG_C[4]))))
        hfsq = F32(0.5) * f * f
        dk = e.astype(F32)
        out = dk * _LN2_HI + (((s * (hfsq + R) + dk * _LN2_LO) - hfsq) + f)
    out = np.where(x == 0, F32(-np.inf), out)
    out = np.where(x < 0, F32(np.nan), out)
    return np.where((x != x) | (x == np.inf), x, out).astype(F32)


def _dot(w: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """mt_dense on rows: y[n, o] = (0 + w[o,0] x[n,0] + w[o,1] x[n,1] + ...) + b[o], summed left to right."""
    prod = x[:, None, :] * w[None, :, :]  # (N, O, K): each product rounded once, as in C
    prod[..., 0] += F32(0.0)  # C starts from +0.0: turns a leading -0.0 into +0.0, nothing else
    return np.add.accumulate(prod, axis=2)[..., -1] + b


def _seq_sum(a: np.ndarray, axis: int) -> np.ndarray:
    """0.0f + a[0] + a[1] + ... along axis, in that order."""
    a = np.moveaxis(a, axis, -1)
    if a.shape[-1] == 0:
        return np.zeros(a.shape[:-1], F32)
    a = a.copy()
    a[..., 0] += F32(0.0)
    return np.add.accumulate(a, axis=-1)[..., -1]


def _seq_max(z: np.ndarray) -> np.ndarray:
    """m = z[0]; m = z[c] if z[c] > m (C's loop; ignores NaN after the first element, unlike np.max)."""
    m = z[:, 0]
    for c in range(1, z.shape[1]):
        m = np.where(z[:, c] > m, z[:, c], m)
    return m


def _forward(layers: Layers, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (N, C) and hidden activations after ReLU (N, H) or None (mt_forward)."""
    if len(layers) == 1:
        return _dot(layers[0][0], x, layers[0][1]), None
    (w1, b1), (w2, b2) = layers
    h = _dot(w1, x, b1)
    h = np.where(h < 0, F32(0.0), h)  # if (h < 0) h = 0: keeps -0.0 and NaN as they are
    return _dot(w2, h, b2), h


def predict(layers: Layers, x: np.ndarray) -> np.ndarray:
    """Class index per row as mt_predict picks it (first strict maximum; a NaN never wins over index 0)."""
    z, _ = _forward(layers, x)
    best = np.zeros(len(z), np.int64)
    top = z[:, 0]
    for c in range(1, z.shape[1]):
        better = z[:, c] > top
        best = np.where(better, c, best)
        top = np.where(better, z[:, c], top)
    return best


def val_loss(layers: Layers, x: np.ndarray, y: np.ndarray) -> np.float32:
    """mt_val_loss: the float32 sum of per-sample cross-entropies, in sample order, over their count."""
    z, _ = _forward(layers, x)
    m = _seq_max(z)
    s = _seq_sum(expf(z - m[:, None]), axis=1)
    terms = (logf(s) + m) - z[np.arange(len(y)), y]
    return _seq_sum(terms, axis=0) / F32(len(y))


class _SGD:
    """mt_sgd over one parameter tensor: g = grad + decay p; v = momentum v + g; p = p - lr v."""

    def __init__(self, p: SGDParams):
        self.lr, self.momentum, self.decay = F32(p.lr), F32(p.momentum), F32(p.decay)

    def __call__(self, param: np.ndarray, velocity: np.ndarray, grad: np.ndarray) -> None:
        g = grad + self.decay * param
        velocity[...] = self.momentum * velocity + g
        param[...] = param - self.lr * velocity


def _step(layers: Layers, velocity: Layers, sgd: _SGD, x: np.ndarray, y: np.ndarray) -> None:
    """mt_step on one batch x (B, F) with labels y (B,)."""
    nb = len(y)
    z, h = _forward(layers, x)
    m = _seq_max(z)
    e = expf(z - m[:, None])
    s = _seq_sum(e, axis=1)
    dz = e / s[:, None]
    rows = np.arange(nb)
    dz[rows, y] = dz[rows, y] - F32(1.0)
    dz = dz / F32(nb)
    if h is None:
        (w1, b1), (vw1, vb1) = layers[0], velocity[0]
        sgd(w1, vw1, _seq_sum(dz[:, :, None] * x[:, None, :], axis=0))  # g[c][k] = sum_b z[b][c] x[b][k]
        sgd(b1, vb1, _seq_sum(dz, axis=0))
        return
    (w1, b1), (w2, b2) = layers
    (vw1, vb1), (vw2, vb2) = velocity
    # delta to the hidden layer with the weights before this step: d[b][j] = (sum_c z[b][c] W2[c][j]) * (h > 0)
    back = _seq_sum(dz[:, :, None] * w2[None, :, :], axis=1)
    d = back * np.where(h > 0, F32(1.0), F32(0.0))
    sgd(w2, vw2, _seq_sum(dz[:, :, None] * h[:, None, :], axis=0))
    sgd(b2, vb2, _seq_sum(dz, axis=0))
    sgd(w1, vw1, _seq_sum(d[:, :, None] * x[:, None, :], axis=0))
    sgd(b1, vb1, _seq_sum(d, axis=0))


def _dequantize(f: Features) -> np.ndarray:
    """mt_dequantize: (float)q * 2^-frac_bits, exact; the firmware's store has no zero point."""
    if f.zero_point:
        raise ValueError("head_replay: the firmware's sample store is symmetric (zero point 0), "
                         f"got zero point {f.zero_point}")
    return f.q.reshape(len(f.q), -1).astype(F32) * F32(f.scale)


def replay_head(train: Features, y_train: np.ndarray, val: Features, y_val: np.ndarray, hidden: int, classes: int,
                params: SGDParams, seed: int) -> TrainResult:
    """mt_train on the store [train | val]: what the firmware computes for this draw and head seed, bit for bit.
    TrainResult.val_losses holds the float32 validation loss of every epoch run."""
    x_train, x_val = _dequantize(train), _dequantize(val)
    y_train, y_val = np.asarray(y_train, np.int64), np.asarray(y_val, np.int64)
    features = x_train.shape[1]
    shapes = [(features, hidden), (hidden, classes)] if hidden else [(features, classes)]
    layers = [(prng.init_uniform(seed, i, fan_out, fan_in), np.zeros(fan_out, F32))
              for i, (fan_in, fan_out) in enumerate(shapes)]
    velocity = [(np.zeros_like(w), np.zeros_like(b)) for w, b in layers]
    best = [(w.copy(), b.copy()) for w, b in layers]
    sgd = _SGD(params)
    n, batch = len(y_train), params.batch
    best_loss, best_epoch, epochs_run, losses = F32(np.inf), 0, 0, []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for epoch in range(1, params.epochs + 1):
            order = prng.shuffle(seed, epoch, n) if n else np.zeros(0, np.int64)
            for start in range(0, n, batch):
                rows = order[start:start + batch]
                _step(layers, velocity, sgd, x_train[rows], y_train[rows])
            epochs_run = epoch
            if len(y_val) == 0:
                continue
            loss = val_loss(layers, x_val, y_val)
            losses.append(float(loss))
            if loss < best_loss:  # NaN never improves
                best_loss, best_epoch = loss, epoch
                best = [(w.copy(), b.copy()) for w, b in layers]
            if epoch - best_epoch >= params.patience:
                break
    if len(y_val) == 0:
        best, best_epoch = layers, epochs_run
    return TrainResult(best, epochs_run, best_epoch, losses)


def replay_accuracy(layers: Layers, x: Features | np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """(accuracy, correct) of mt_predict over the test inputs (stored features or float rows)."""
    rows = _dequantize(x) if isinstance(x, Features) else np.asarray(x, F32).reshape(len(x), -1)
    if len(y) == 0:
        return float("nan"), 0
    correct = int((predict(layers, rows) == np.asarray(y)).sum())
    return correct / len(y), correct
