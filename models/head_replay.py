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
from .head_params import Layers, SGDParams, TrainResult, stream_schedule

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


def _dot_q(w: np.ndarray, q: np.ndarray, b: np.ndarray, scale: np.float32) -> np.ndarray:
    """mt_dense_q on stored rows q (float32 of the integers): (sum_k w[o,k] q[n,k]) * scale + b[o]."""
    prod = q[:, None, :] * w[None, :, :]
    prod[..., 0] += F32(0.0)
    return np.add.accumulate(prod, axis=2)[..., -1] * scale + b


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


def _forward(layers: Layers, q: np.ndarray, scale: np.float32) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (N, C) and hidden activations after ReLU (N, H) or None of stored rows q (mt_forward)."""
    if len(layers) == 1:
        return _dot_q(layers[0][0], q, layers[0][1], scale), None
    (w1, b1), (w2, b2) = layers
    h = _dot_q(w1, q, b1, scale)
    h = np.where(h < 0, F32(0.0), h)  # if (h < 0) h = 0: keeps -0.0 and NaN as they are
    return _dot(w2, h, b2), h


def predict(layers: Layers, q: np.ndarray, scale: np.float32) -> np.ndarray:
    """Class index per stored row as mt_predict picks it (first strict maximum; a NaN never wins over index 0)."""
    z, _ = _forward(layers, q, scale)
    best = np.zeros(len(z), np.int64)
    top = z[:, 0]
    for c in range(1, z.shape[1]):
        better = z[:, c] > top
        best = np.where(better, c, best)
        top = np.where(better, z[:, c], top)
    return best


def val_loss(layers: Layers, q: np.ndarray, scale: np.float32, y: np.ndarray) -> np.float32:
    """mt_val_loss: the float32 sum of per-sample cross-entropies, in sample order, over their count."""
    z, _ = _forward(layers, q, scale)
    m = _seq_max(z)
    s = _seq_sum(expf(z - m[:, None]), axis=1)
    terms = (logf(s) + m) - z[np.arange(len(y)), y]
    return _seq_sum(terms, axis=0) / F32(len(y))


class _SGD:
    """The update rule of mt_step. With an update buffer u per parameter (momentum, or batch > 1): at a batch's
    start u = momentum u + decay w, then each sample's gradient is added in sample order, then w = w - lr u.
    Without (momentum 0, batch 1): w = w - lr (grad + decay w) per sample."""

    def __init__(self, p: SGDParams):
        self.lr, self.momentum, self.decay = F32(p.lr), F32(p.momentum), F32(p.decay)
        self.buffered = bool(p.momentum) or p.batch > 1

    def begin(self, param: np.ndarray, u: np.ndarray) -> None:
        u[...] = self.momentum * u + self.decay * param

    @staticmethod
    def accumulate(u: np.ndarray, grads: np.ndarray) -> None:
        """u += grads[0]; u += grads[1]; ... (float32, in that order)."""
        u[...] = np.add.accumulate(np.concatenate([u[None], grads]), axis=0)[-1]

    def end(self, param: np.ndarray, u: np.ndarray) -> None:
        param[...] = param - self.lr * u

    def direct(self, param: np.ndarray, grad: np.ndarray) -> None:
        param[...] = param - self.lr * (grad + self.decay * param)


def _logit_grad(z: np.ndarray, y: np.ndarray, nb: int) -> np.ndarray:
    """mt_logit_grad per row: (softmax(z) - onehot(y)) / nb."""
    m = _seq_max(z)
    e = expf(z - m[:, None])
    s = _seq_sum(e, axis=1)
    dz = e / s[:, None]
    rows = np.arange(len(y))
    dz[rows, y] = dz[rows, y] - F32(1.0)
    return dz / F32(nb)


def _step(layers: Layers, update: Layers | None, sgd: _SGD, q: np.ndarray, scale: np.float32, y: np.ndarray,
          nb: int) -> None:
    """mt_step on one batch of stored rows q (B, F) with labels y (B,); nb = B (the divisor of the mean)."""
    z, h = _forward(layers, q, scale)  # the weights do not change within a buffered batch: all rows at once
    dz = _logit_grad(z, y, nb)
    if h is None:
        grads = [((dz * scale)[:, :, None] * q[:, None, :], dz)]  # W1[c][k] += (z[c] 2^-f) q[k]; b1[c] += z[c]
    else:
        w2 = layers[1][0]
        # deltas with the weights before this step: d[b][j] = (sum_c z[b][c] W2[c][j]) * (h > 0)
        d = _seq_sum(dz[:, :, None] * w2[None, :, :], axis=1) * np.where(h > 0, F32(1.0), F32(0.0))
        grads = [((d * scale)[:, :, None] * q[:, None, :], d), (dz[:, :, None] * h[:, None, :], dz)]
    if update is None:  # nb == 1: w -= lr (grad + decay w), layer 2 first as in C (order does not matter)
        for (w, b), (gw, gb) in zip(layers, grads):
            sgd.direct(w, gw[0])
            sgd.direct(b, gb[0])
        return
    for (w, b), (uw, ub), (gw, gb) in zip(layers, update, grads):
        sgd.begin(w, uw)
        sgd.begin(b, ub)
        sgd.accumulate(uw, gw)
        sgd.accumulate(ub, gb)
        sgd.end(w, uw)
        sgd.end(b, ub)


def _stored(f: Features) -> tuple[np.ndarray, np.float32]:
    """The store's rows as float32 integers and the scale 2^-frac_bits (mt_dense_q dequantizes on the fly); the
    firmware's store has no zero point."""
    if f.zero_point:
        raise ValueError("head_replay: the firmware's sample store is symmetric (zero point 0), "
                         f"got zero point {f.zero_point}")
    return f.q.reshape(len(f.q), int(np.prod(f.q.shape[1:]))).astype(F32), F32(f.scale)


def replay_head(train: Features, y_train: np.ndarray, val: Features, y_val: np.ndarray, hidden: int, classes: int,
                params: SGDParams, seed: int) -> TrainResult:
    """mt_train on the store [train | val]: what the firmware computes for this draw and head seed, bit for bit.
    TrainResult.val_losses holds the float32 validation loss of every epoch run.

    Streaming (params.streaming): mt_stream_begin, then mt_stream_sample on each training row in order (val must be
    empty): one batch-1 step on the row, one on each ring entry (oldest first), the ring push; the last weights."""
    (q_train, scale), (q_val, _) = _stored(train), _stored(val)
    if params.streaming and len(q_val):
        raise ValueError("head_replay: streaming has no validation split; got validation samples")
    y_train, y_val = np.asarray(y_train, np.int64), np.asarray(y_val, np.int64)
    features = q_train.shape[1]
    shapes = [(features, hidden), (hidden, classes)] if hidden else [(features, classes)]
    layers = [(prng.init_uniform(seed, i, fan_out, fan_in), np.zeros(fan_out, F32))
              for i, (fan_in, fan_out) in enumerate(shapes)]
    sgd = _SGD(params)
    update = [(np.zeros_like(w), np.zeros_like(b)) for w, b in layers] if sgd.buffered else None
    restore = params.restore_best and len(y_val) > 0
    best = [(w.copy(), b.copy()) for w, b in layers]
    n, batch = len(y_train), params.batch
    best_loss, best_epoch, epochs_run, losses = F32(np.inf), 0, 0, []
    if params.streaming:
        schedule = stream_schedule(n, params.replay)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            for j in schedule:
                _step(layers, update, sgd, q_train[j:j + 1], scale, y_train[j:j + 1], 1)
        return TrainResult(layers, 1, 1, [], len(schedule))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for epoch in range(1, params.epochs + 1):
            order = prng.shuffle(seed, epoch, n) if n else np.zeros(0, np.int64)
            for start in range(0, n, batch):
                rows = order[start:start + batch]
                _step(layers, update, sgd, q_train[rows], scale, y_train[rows], len(rows))
            epochs_run = epoch
            if len(y_val) == 0:
                continue
            loss = val_loss(layers, q_val, scale, y_val)
            losses.append(float(loss))
            if loss < best_loss:  # NaN never improves
                best_loss, best_epoch = loss, epoch
                if restore:
                    best = [(w.copy(), b.copy()) for w, b in layers]
            if epoch - best_epoch >= params.patience:
                break
    if not restore:  # the last weights are kept
        best, best_epoch = layers, epochs_run
    return TrainResult(best, epochs_run, best_epoch, losses)


def replay_accuracy(layers: Layers, x: Features | np.ndarray, y: np.ndarray,
                    scale: float | None = None) -> tuple[float, int]:
    """(accuracy, correct) of mt_predict over the test inputs: stored features, or their dequantized float rows
    with the scale 2^-f they were dequantized by (the firmware sums over the integers and scales the sum)."""
    if isinstance(x, Features):
        q, s = _stored(x)
    else:
        if scale is None:
            raise ValueError("replay_accuracy: float rows need the feature scale")
        s = F32(scale)
        q = np.asarray(x, F32).reshape(len(x), -1) / s  # exact: the rows are integers times a power of two
    if len(y) == 0:
        return float("nan"), 0
    correct = int((predict(layers, q, s) == np.asarray(y)).sum())
    return correct / len(y), correct


def _sum_along(prod: np.ndarray, axis: int) -> np.ndarray:
    """0.0f + prod[0] + prod[1] + ... along `axis` (1 or 2; C's loop order), float32; prod is a temporary (changed)."""
    lead = (slice(None),) * axis
    prod[lead + (0,)] += F32(0.0)  # C starts from +0.0: turns a leading -0.0 into +0.0, nothing else
    return np.add.accumulate(prod, axis=axis)[lead + (-1,)]


def _sum_rows(prod: np.ndarray) -> np.ndarray:
    """0.0f + prod[0] + prod[1] + ... over axis 0 (C's loop order), float32; prod is a temporary (changed).
    np.add.reduce over the outer axis of a C-contiguous array adds whole rows in order (the reduced axis is the
    iterator's outer loop), several times faster than np.add.accumulate; a single column would be summed pairwise
    (the reduced axis is then the inner loop), so that case accumulates. Tested bit for bit against replay_head."""
    prod[0] += F32(0.0)  # C starts from +0.0: turns a leading -0.0 into +0.0, nothing else
    if prod[0].size < 2:
        return np.add.accumulate(prod, axis=0)[-1]
    return np.add.reduce(prod, axis=0)


def stream_heads(q: np.ndarray, y: np.ndarray, scale: float, hidden: int, classes: int, params: SGDParams,
                 seeds: list[int]) -> list[TrainResult]:
    """R streaming trainings at once, each head exactly as replay_head (and the firmware) computes it: every
    operation elementwise over the heads, every sum in C's order. q: (R, N, F) feature integers in collection
    order, y: (R, N) labels, one head seed per repeat. The study's simulation of streaming uses this: a batch-1
    step is small enough that numpy's per-call cost, shared by the R heads, dominates, so bit-exactness costs a
    study little (the batched torch trainer's other summation order, amplified by the ring's repeated steps,
    moved a draw's accuracy by several points). Weight matrices are held input-major, (in, R, out), so that a
    dense layer's sums run over the outer axis (_sum_rows), and their update passes run in place in two scratch
    arrays per layer (the same float32 operations as _SGD's, without temporaries)."""
    q = np.asarray(q, F32)
    y = np.asarray(y, np.int64)
    repeats, n, features = q.shape
    qt = np.ascontiguousarray(q.transpose(1, 2, 0))  # (N, F, R): sample j's column x[k, r]
    scale = F32(scale)
    shapes = [(features, hidden), (hidden, classes)] if hidden else [(features, classes)]
    layers = [(np.ascontiguousarray(np.stack([prng.init_uniform(seed, i, fan_out, fan_in) for seed in seeds])
                                    .transpose(2, 0, 1)),  # (in, R, out)
               np.zeros((repeats, fan_out), F32)) for i, (fan_in, fan_out) in enumerate(shapes)]
    sgd = _SGD(params)
    update = [(np.zeros_like(w), np.zeros_like(b)) for w, b in layers] if sgd.buffered else None
    scratch = [(np.empty_like(w), np.empty_like(w)) for w, _ in layers]
    rows = np.arange(repeats)
    schedule = stream_schedule(n, params.replay)

    def update_weights(w, u, g, tmp) -> None:
        """g (overwritten) is the step's gradient of w; _SGD's rule, in place."""
        if u is None:  # w - lr (g + decay w)
            np.multiply(w, sgd.decay, out=tmp)
            np.add(g, tmp, out=tmp)
            np.multiply(tmp, sgd.lr, out=tmp)
        else:  # u = momentum u + decay w; u += g; w - lr u
            np.multiply(u, sgd.momentum, out=u)
            np.multiply(w, sgd.decay, out=tmp)
            np.add(u, tmp, out=u)
            np.add(u, g, out=u)
            np.multiply(u, sgd.lr, out=tmp)
        np.subtract(w, tmp, out=w)

    def update_bias(b, ub, g) -> None:
        if ub is None:
            sgd.direct(b, g)
        else:
            sgd.begin(b, ub)
            ub += g
            sgd.end(b, ub)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for j in schedule:
            x, label = qt[j], y[:, j]  # x: (F, R)
            (w1, b1), (prod1, tmp1) = layers[0], scratch[0]
            np.multiply(w1, x[:, :, None], out=prod1)
            a1 = _sum_rows(prod1) * scale + b1  # mt_dense_q: (R, out)
            if hidden:
                h = np.where(a1 < 0, F32(0.0), a1)
                (w2, b2), (prod2, tmp2) = layers[1], scratch[1]
                np.multiply(w2, h.T[:, :, None], out=prod2)
                z = _sum_rows(prod2) + b2  # mt_dense
            else:
                z = a1
            m = z[:, 0]
            for c in range(1, classes):
                m = np.where(z[:, c] > m, z[:, c], m)
            e = expf(z - m[:, None])
            dz = e / _sum_along(e.copy(), 1)[:, None]
            dz[rows, label] = dz[rows, label] - F32(1.0)
            dz = dz / F32(1)
            if hidden:
                # d[r, j] = (sum over c of dz[r, c] W2[c][j], in c order) * (h > 0), with the weights before the step
                d = _sum_along(w2 * dz[None, :, :], 2).T * np.where(h > 0, F32(1.0), F32(0.0))
                np.multiply(x[:, :, None], (d * scale)[None, :, :], out=prod1)
                np.multiply(h.T[:, :, None], dz[None, :, :], out=prod2)
                steps = [(0, prod1, tmp1, d), (1, prod2, tmp2, dz)]
            else:
                np.multiply(x[:, :, None], (dz * scale)[None, :, :], out=prod1)
                steps = [(0, prod1, tmp1, dz)]
            for layer, g, tmp, gb in steps:
                w, b = layers[layer]
                uw, ub = update[layer] if update is not None else (None, None)
                update_weights(w, uw, g, tmp)
                update_bias(b, ub, gb)
    return [TrainResult([(w[:, r, :].T.copy(), b[r].copy()) for w, b in layers], 1, 1, [], len(schedule))
            for r in range(repeats)]
