"""MicroTL head training as the firmware does it: float32 numpy, hand-written forward/backward, no autograd.

Head: FC(F -> C) when hidden == 0, else FC(F -> H), ReLU, FC(H -> C). Weights are [out][in] (row-major, as in C
and torch.nn.Linear). The random numbers come from models.prng, a counter-based generator the firmware reproduces
bit for bit: weights uniform(+-1/sqrt(fan_in)) layer by layer, biases 0; at the start of every epoch the training
indices are shuffled by prng.shuffle(seed, epoch). Each mini-batch of the
stored int8 features is dequantized, pushed forward, scored with softmax cross-entropy (mean over the batch) and
back-propagated; SGD follows torch.optim.SGD (dampening 0, no Nesterov), for weights and biases alike:
    g = grad + decay * w;   v = momentum * v + g   (v starts at 0);   w -= lr * v
After each epoch the validation loss decides early stopping: the best weights (lowest validation loss) are kept,
and training stops after `patience` epochs without improvement or after `epochs`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import prng
from .config import Configuration
from .features import Features, dequantize

Layers = list[tuple[np.ndarray, np.ndarray]]  # [(W (out, in), b (out,))], input side first, float32


@dataclass(frozen=True)
class SGDParams:
    lr: float = 0.01
    momentum: float = 0.9
    decay: float = 1e-4
    batch: int = 8
    epochs: int = 20
    patience: int = 5

    @classmethod
    def from_config(cls, config: Configuration) -> "SGDParams":
        return cls(config.lr, config.momentum, config.decay, config.batch, config.epochs, config.patience)


@dataclass(eq=False)
class TrainResult:
    weights: Layers  # best weights (lowest validation loss)
    epochs_run: int
    best_epoch: int  # 1-based epoch of the kept weights; 0: the initial ones (no finite validation loss)
    val_losses: list[float] = field(default_factory=list)


def init_head(features: int, hidden: int, classes: int, seed: int) -> Layers:
    """uniform(-1/sqrt(fan_in), +1/sqrt(fan_in)) weights of layer l from prng stream INIT_STREAM + l, zero biases."""
    shapes = [(features, hidden), (hidden, classes)] if hidden else [(features, classes)]
    return [(prng.init_uniform(seed, layer, fan_out, fan_in), np.zeros(fan_out, np.float32))
            for layer, (fan_in, fan_out) in enumerate(shapes)]


def forward(weights: Layers, x: np.ndarray) -> np.ndarray:
    """Logits of float32 inputs x (N, F)."""
    h = x
    for i, (w, b) in enumerate(weights):
        h = h @ w.T + b
        if i < len(weights) - 1:
            h = np.maximum(h, np.float32(0))
    return h


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean softmax cross-entropy of logits (N, C) for labels y (N,)."""
    return float(_cross_entropy(logits[None], np.asarray(y)[None])[0])


class _Heads:
    """R independent heads trained in lockstep (one per simulated repeat), so each numpy call does R heads' work:
    on these tiny matrices call overhead, not arithmetic, dominates. Head r only ever touches its own slice, so its
    numbers do not depend on R (tested).

    Each head is kept as augmented matrices [W | b] ((out, in + 1), bias last) that are views into one flat float32
    row per head; inputs carry a trailing 1, so a layer is one matmul forward and one backward, and the SGD update
    is a few vector operations over all parameters (element for element the same arithmetic as per tensor).
    """

    def __init__(self, inits: list[Layers], batch: int):
        self.shapes = [(w.shape[0], w.shape[1] + 1) for w, _ in inits[0]]
        self.params = np.stack([np.concatenate([np.hstack([w, b[:, None]]).ravel() for w, b in layers])
                                for layers in inits]).astype(np.float32)  # (R, P)
        self.grads = np.zeros_like(self.params)
        self.velocity = np.zeros_like(self.params)  # v starts at 0: the first step gives v = g, as in torch
        self.tmp = np.empty_like(self.params)
        self.update_rows = max(1, (256 * 1024 // 4) // self.params.shape[1])  # heads per block of the SGD update
        self.aug = self._views(self.params)
        self.grad_aug = self._views(self.grads)
        r = len(inits)
        self.hidden_buf = np.ones((r, batch, self.shapes[0][0] + 1), np.float32) if len(inits[0]) > 1 else None

    def _views(self, flat: np.ndarray) -> list[np.ndarray]:
        views, offset = [], 0
        for rows, cols in self.shapes:
            view = flat[:, offset:offset + rows * cols].reshape(len(flat), rows, cols)
            assert np.shares_memory(view, flat)
            views.append(view)
            offset += rows * cols
        return views

    def layers(self, row: np.ndarray) -> Layers:
        """(W, b) pairs of one head from its flat parameter row."""
        out, offset = [], 0
        for rows, cols in self.shapes:
            aug = row[offset:offset + rows * cols].reshape(rows, cols)
            out.append((aug[:, :-1].copy(), aug[:, -1].copy()))
            offset += rows * cols
        return out

    def forward(self, xa: np.ndarray, hidden: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits (R, B, C) of xa (R, B, F + 1) and the hidden activations with their trailing 1 (or None)."""
        if self.hidden_buf is None:
            return xa @ self.aug[0].transpose(0, 2, 1), None
        if hidden is None:
            hidden = np.ones(xa.shape[:2] + (self.shapes[0][0] + 1,), np.float32)
        np.matmul(xa, self.aug[0].transpose(0, 2, 1), out=hidden[..., :-1])
        np.maximum(hidden, np.float32(0), out=hidden)  # ReLU (the trailing 1 stays)
        return hidden @ self.aug[1].transpose(0, 2, 1), hidden

    def step(self, xa: np.ndarray, onehot: np.ndarray, p: SGDParams) -> None:
        """One SGD step of every head on its batch: xa (R, B, F + 1) with a trailing 1, onehot (R, B, C)."""
        z, h = self.forward(xa, None if self.hidden_buf is None else self.hidden_buf[:, :xa.shape[1]])
        z -= z.max(axis=2, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=2, keepdims=True)  # softmax
        z -= onehot
        z /= np.float32(xa.shape[1])  # d(mean loss) / d(logits)
        if h is None:
            np.matmul(z.transpose(0, 2, 1), xa, out=self.grad_aug[0])
        else:
            np.matmul(z.transpose(0, 2, 1), h, out=self.grad_aug[1])
            delta = z @ self.aug[1][:, :, :-1]
            delta *= h[..., :-1] > 0
            np.matmul(delta.transpose(0, 2, 1), xa, out=self.grad_aug[0])
        decay, momentum, lr = np.float32(p.decay), np.float32(p.momentum), np.float32(p.lr)
        # the update streams over all R heads' parameters several times: done a block of heads at a time (about
        # 256 KB per array) it stays in cache; element for element the same float32 operations, so same numbers
        for s in range(0, len(self.params), self.update_rows):
            e = s + self.update_rows
            w, g, v, tmp = self.params[s:e], self.grads[s:e], self.velocity[s:e], self.tmp[s:e]
            g += np.multiply(w, decay, out=tmp)  # g = grad + decay * w
            v *= momentum
            v += g  # v = momentum * v + g
            w -= np.multiply(v, lr, out=tmp)  # w -= lr * v


def _stack(parts: list[Features]) -> tuple[np.ndarray, np.float32, np.float32]:
    """(R, N, F) int8, scale, zero point of per-repeat feature sets from one cut."""
    if len({(f.frac_bits, f.zero_point, f.q.shape) for f in parts}) != 1:
        raise ValueError("train_heads: all repeats need features of the same cut and the same sample counts")
    return np.stack([f.q for f in parts]), np.float32(parts[0].scale), np.float32(parts[0].zero_point)


def _dequantize_into(q: np.ndarray, scale: np.float32, zero_point: np.float32, out: np.ndarray) -> np.ndarray:
    """out[..., :-1] = (q - zero_point) * 2^-frac_bits; out[..., -1] stays 1 (the bias input)."""
    x = out[..., :-1]
    if zero_point:
        np.subtract(q, zero_point, out=x)
        x *= scale
    else:
        np.multiply(q, scale, out=x)
    return out


def train_heads(train: list[Features], y_train: list[np.ndarray], val: list[Features], y_val: list[np.ndarray],
                hidden: int, classes: int, params: SGDParams, seeds: list[int]) -> list[TrainResult]:
    """Train one fresh head per repeat r on (train[r], y_train[r]) with early stopping on (val[r], y_val[r]) and
    seed seeds[r]; all repeats share the cut and the sample counts. Results equal R separate train_head calls.

    With an empty validation set there is no early stopping and the final weights are kept.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging lr is a legitimate (bad) design point
        return _train(train, y_train, val, y_val, hidden, classes, params, seeds)


def train_head(train: Features, y_train: np.ndarray, val: Features, y_val: np.ndarray, hidden: int, classes: int,
               params: SGDParams, seed: int) -> TrainResult:
    """Train a fresh head on stored features with early stopping; see the module docstring."""
    return train_heads([train], [y_train], [val], [y_val], hidden, classes, params, [seed])[0]


def _train(train, y_train, val, y_val, hidden, classes, params, seeds) -> list[TrainResult]:
    repeats = len(seeds)
    q_train, scale, zero_point = _stack(train)
    features = q_train.shape[2]
    heads = _Heads([init_head(features, hidden, classes, seed) for seed in seeds], params.batch)
    eye = np.eye(classes, dtype=np.float32)
    onehot = eye[np.stack(y_train)]  # (R, N, C)
    rows = np.arange(repeats)[:, None]
    xa_buf = np.ones((repeats, params.batch, features + 1), np.float32)
    has_val = len(val[0]) > 0
    if has_val:
        q_val, _, _ = _stack(val)
        xa_val = _dequantize_into(q_val, scale, zero_point, np.ones(q_val.shape[:2] + (features + 1,), np.float32))
        y_val_all = np.stack(y_val)
    best = heads.params.copy()
    best_loss = np.full(repeats, np.inf)
    best_epoch = np.zeros(repeats, int)
    epochs_run = np.zeros(repeats, int)
    losses: list[list[float]] = [[] for _ in range(repeats)]
    active = np.ones(repeats, bool)
    n = q_train.shape[1]
    for epoch in range(1, params.epochs + 1):
        order = np.stack([prng.shuffle(seed, epoch, n) for seed in seeds])
        for start in range(0, n, params.batch):
            idx = order[:, start:start + params.batch]
            xa = _dequantize_into(q_train[rows, idx], scale, zero_point, xa_buf[:, :idx.shape[1]])
            heads.step(xa, onehot[rows, idx], params)  # finished heads keep stepping; their results are frozen
        epochs_run[active] = epoch
        if not has_val:
            continue
        loss = _cross_entropy(heads.forward(xa_val)[0], y_val_all)
        for r in np.flatnonzero(active):
            losses[r].append(float(loss[r]))
        improved = active & (loss < best_loss)
        best[improved], best_loss[improved], best_epoch[improved] = heads.params[improved], loss[improved], epoch
        active &= (epoch - best_epoch) < params.patience
        if not active.any():
            break
    if not has_val:
        best, best_epoch = heads.params.copy(), epochs_run.copy()
    return [TrainResult(heads.layers(best[r]), int(epochs_run[r]), int(best_epoch[r]), losses[r])
            for r in range(repeats)]


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean softmax cross-entropy per repeat: logits (R, N, C), y (R, N) -> (R,) float64."""
    m = logits.max(axis=2, keepdims=True)
    log_z = np.log(np.exp(logits - m).sum(axis=2)) + m[..., 0]
    picked = np.take_along_axis(logits, y[..., None], axis=2)[..., 0]
    return (log_z - picked).mean(axis=1).astype(np.float64)


def accuracy(weights: Layers, x: np.ndarray | Features, y: np.ndarray) -> float:
    """Top-1 accuracy of the head on float features x (or stored Features, dequantized)."""
    if isinstance(x, Features):
        x = dequantize(x)
    return float((forward(weights, x).argmax(axis=1) == y).mean()) if len(y) else float("nan")
