"""MicroTL head training as the firmware does it: float32, hand-written forward/backward, no autograd.

Head: FC(F -> C) when hidden == 0, else FC(F -> H), ReLU, FC(H -> C). Weights are [out][in] (row-major, as in C
and torch.nn.Linear). The random numbers come from models.prng, a counter-based generator the firmware reproduces
bit for bit: weights uniform(+-1/sqrt(fan_in)) layer by layer, biases 0; at the start of every epoch the training
indices are shuffled by prng.shuffle(seed, epoch). Each mini-batch of the
stored int8 features is dequantized, pushed forward, scored with softmax cross-entropy (mean over the batch) and
back-propagated; SGD follows torch.optim.SGD (dampening 0, no Nesterov), for weights and biases alike:
    g = grad + decay * w;   v = momentum * v + g   (v starts at 0);   w -= lr * v
(the firmware keeps v as one update buffer that also accumulates the batch's gradients sample by sample:
v = momentum * v + decay * w, then + each sample's gradient; at momentum 0 and batch 1 it has no buffer and updates
w -= lr * (grad + decay * w) per sample: the same rule, other rounding.)
After each epoch the validation loss decides early stopping: training stops after `patience` epochs without
improvement or after `epochs`; with `restore_best` the best weights (lowest validation loss) are kept, without it
the last ones.
The simulation trains a trial's repeats together with batched torch ops (see _Heads) and dequantizes the stored
features once per trial rather than per batch (q * 2^-f is exact in float32, so the inputs are the same numbers).

Streaming mode (TinyOL, SGDParams.mode "streaming"): no store, no shuffle, no validation. The samples arrive in
collection order; sample i gets one step of batch 1 (the step above with B = 1), then one step of batch 1 on each
of the `replay` ring's entries (the min(i, K) samples before it, oldest first), then joins the ring (evicting the
oldest when full): 1 + min(i, K) steps for sample i. The weights after the last step are kept. train_heads trains
streaming heads with the firmware's own arithmetic (models.head_replay.stream_heads, all repeats in lockstep), so
a study's streaming accuracy is the replay's, bit for bit.
"""
from __future__ import annotations

import numpy as np
import torch

from . import head_replay, prng
from .features import Features, dequantize
from .head_params import Layers, SGDParams, TrainResult, stream_schedule  # noqa: F401  (this module's API too)



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
    """R independent heads trained in lockstep (one per simulated repeat), so each torch call does R heads' work:
    on these tiny matrices call overhead, not arithmetic, dominates. Head r only ever touches its own slice, so its
    numbers do not depend on R (tested). Uses torch's intra-op threads as the caller set them (study workers: 1).

    The parameters of all heads are one flat float32 buffer [W1 of all heads | b1 | W2 | b2] (the velocity
    likewise): each layer's view (R, out, in) is contiguous for batched matmuls, and the SGD update is two fused
    passes over all R x P numbers instead of six. Same rule as torch.optim.SGD, regrouped:
    v = (momentum * v + grad) + decay * w, where the first sum is the backward matmul's own beta (baddbmm), and
    w -= lr * v; only the rounding of these float32 sums differs (torch itself fuses w + (-lr) * v).
    torch's fused SGD kernel would save one more pass, but it rounds the last elements of a tensor differently
    (scalar tail), which would make a head's numbers depend on R.
    """

    def __init__(self, inits: list[Layers]):
        self.repeats = len(inits)
        self.shapes = [w.shape for w, _ in inits[0]]  # (out, in) per layer
        self.params = torch.from_numpy(np.concatenate([np.stack([layers[i][j] for layers in inits]).ravel()
                                                       for i in range(len(self.shapes)) for j in (0, 1)]))
        self.velocity = torch.zeros_like(self.params)  # v starts at 0: the first step gives v = g, as in torch
        self.w, self.b = self._views(self.params)
        self.vw, self.vb = self._views(self.velocity)

    def _views(self, flat: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-layer views (R, out, in) and (R, out) of a flat buffer."""
        ws, bs, offset, r = [], [], 0, self.repeats
        for rows, cols in self.shapes:
            ws.append(flat[offset:offset + r * rows * cols].view(r, rows, cols))
            offset += r * rows * cols
            bs.append(flat[offset:offset + r * rows].view(r, rows))
            offset += r * rows
        return ws, bs

    def layers(self, flat: np.ndarray, r: int) -> Layers:
        """(W, b) pairs of head r from a flat buffer of this layout."""
        ws, bs = self._views(torch.from_numpy(flat))
        return [(w[r].numpy().copy(), b[r].numpy().copy()) for w, b in zip(ws, bs)]

    def tensors(self, flat: np.ndarray) -> list[np.ndarray]:
        """Numpy views (R, ...) of every parameter tensor of a flat buffer, for per-head selection."""
        ws, bs = self._views(torch.from_numpy(flat))
        return [t.numpy() for pair in zip(ws, bs) for t in pair]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits transposed, (R, C, B) (softmax over a middle dimension is much faster in torch than over a
        short last one), of x (R, B, F), and the hidden activations (R, B, H) after ReLU (or None)."""
        if len(self.w) == 1:
            return torch.baddbmm(self.b[0].unsqueeze(2), self.w[0], x.transpose(1, 2)), None
        h = torch.baddbmm(self.b[0].unsqueeze(1), x, self.w[0].transpose(1, 2)).relu_()
        return torch.baddbmm(self.b[1].unsqueeze(2), self.w[1], h.transpose(1, 2)), h

    def step(self, x: torch.Tensor, onehot: torch.Tensor, p: SGDParams) -> None:
        """One SGD step of every head on its batch: x (R, B, F), onehot (R, B, C)."""
        z, h = self.forward(x)
        dz = torch.softmax(z, 1).sub_(onehot.transpose(1, 2)).div_(x.shape[1])  # d(mean loss) / d(logits)
        momentum = p.momentum
        last = len(self.w) - 1
        if h is not None:  # d(loss) / d(hidden pre-activation), before any weight changes
            delta = torch.ops.aten.threshold_backward(torch.bmm(dz.transpose(1, 2), self.w[1]), h, 0)
            self.vw[0].baddbmm_(delta.transpose(1, 2), x, beta=momentum)  # v = momentum * v + grad; beta 0: v = grad
            self._bias(0, delta.sum(1), momentum)
        self.vw[last].baddbmm_(dz, x if h is None else h, beta=momentum)
        self._bias(last, dz.sum(2), momentum)
        if p.decay:
            self.velocity.add_(self.params, alpha=p.decay)  # v += decay * w
        self.params.add_(self.velocity, alpha=-p.lr)  # w -= lr * v

    def _bias(self, layer: int, grad: torch.Tensor, momentum: float) -> None:
        """v = momentum * v + grad for one layer's biases."""
        vb = self.vb[layer]
        if momentum:
            torch.add(grad, vb, alpha=momentum, out=vb)
        else:
            vb.copy_(grad)


def _stack(parts: list[Features]) -> tuple[np.ndarray, np.float32, np.float32]:
    """(R, N, F) int8, scale, zero point of per-repeat feature sets from one cut."""
    if len({(f.frac_bits, f.zero_point, f.q.shape) for f in parts}) != 1:
        raise ValueError("train_heads: all repeats need features of the same cut and the same sample counts")
    return np.stack([f.q for f in parts]), np.float32(parts[0].scale), np.float32(parts[0].zero_point)


def _dequantize(q: np.ndarray, scale: np.float32, zero_point: np.float32) -> torch.Tensor:
    """float32 (q - zero_point) * 2^-frac_bits, exact, so dequantizing the store once equals the firmware's
    per-batch dequantization."""
    x = q.astype(np.float32)
    if zero_point:
        x -= zero_point
    x *= scale
    return torch.from_numpy(x)


def _batches(seeds: list[int], epoch: int, n: int, batch: int) -> list[torch.Tensor]:
    """The epoch's mini-batches as row indices into the (R * n, F) store: one (R * B,) tensor per step."""
    order = np.stack([prng.shuffle(seed, epoch, n) for seed in seeds]) + (np.arange(len(seeds)) * n)[:, None]
    full = n // batch
    steps = list(torch.from_numpy(order[:, :full * batch].reshape(len(seeds), full, batch)
                                  .transpose(1, 0, 2).reshape(full, len(seeds) * batch))) if full else []
    if n % batch:
        steps.append(torch.from_numpy(np.ascontiguousarray(order[:, full * batch:]).ravel()))
    return steps


def train_heads(train: list[Features], y_train: list[np.ndarray], val: list[Features], y_val: list[np.ndarray],
                hidden: int, classes: int, params: SGDParams, seeds: list[int]) -> list[TrainResult]:
    """Train one fresh head per repeat r on (train[r], y_train[r]) with early stopping on (val[r], y_val[r]) and
    seed seeds[r]; all repeats share the cut and the sample counts. Results equal R separate train_head calls.

    With an empty validation set there is no early stopping and the final weights are kept. In streaming mode
    (params.streaming) train[r] is the collection in its order and the validation sets must be empty.
    """
    with np.errstate(over="ignore", invalid="ignore"), torch.inference_mode():
        # a diverging lr is a legitimate (bad) design point
        if params.streaming:
            if any(len(v) for v in val):
                raise ValueError("train_heads: streaming has no validation split; got validation samples")
            return _stream(train, y_train, hidden, classes, params, seeds)
        return _train(train, y_train, val, y_val, hidden, classes, params, seeds)


def train_head(train: Features, y_train: np.ndarray, val: Features, y_val: np.ndarray, hidden: int, classes: int,
               params: SGDParams, seed: int) -> TrainResult:
    """Train a fresh head on stored features with early stopping; see the module docstring."""
    return train_heads([train], [y_train], [val], [y_val], hidden, classes, params, [seed])[0]


def _train(train, y_train, val, y_val, hidden, classes, params, seeds) -> list[TrainResult]:
    repeats = len(seeds)
    q_train, scale, zero_point = _stack(train)
    _, n, features = q_train.shape
    heads = _Heads([init_head(features, hidden, classes, seed) for seed in seeds])
    x_all = _dequantize(q_train, scale, zero_point).view(repeats * n, features)
    onehot_all = torch.from_numpy(np.eye(classes, dtype=np.float32)[np.concatenate(y_train)])  # (R * N, C)
    x_buf = torch.empty(repeats * params.batch, features)
    onehot_buf = torch.empty(repeats * params.batch, classes)
    has_val = len(val[0]) > 0
    if has_val:
        q_val, _, _ = _stack(val)
        x_val = _dequantize(q_val, scale, zero_point)
        y_val_all = np.stack(y_val)
    params_np = heads.params.numpy()  # shares memory
    best = params_np.copy()
    current, kept = heads.tensors(params_np), heads.tensors(best)
    best_loss = np.full(repeats, np.inf)
    best_epoch = np.zeros(repeats, int)
    epochs_run = np.zeros(repeats, int)
    losses: list[list[float]] = [[] for _ in range(repeats)]
    active = np.ones(repeats, bool)
    for epoch in range(1, params.epochs + 1):
        for idx in _batches(seeds, epoch, n, params.batch) if n else []:
            rows = len(idx)
            x = torch.index_select(x_all, 0, idx, out=x_buf[:rows]).view(repeats, -1, features)
            onehot = torch.index_select(onehot_all, 0, idx, out=onehot_buf[:rows]).view(repeats, -1, classes)
            heads.step(x, onehot, params)  # finished heads keep stepping; their results are frozen
        epochs_run[active] = epoch
        if not has_val:
            continue
        loss = _cross_entropy(heads.forward(x_val)[0].transpose(1, 2).numpy(), y_val_all)
        for r in np.flatnonzero(active):
            losses[r].append(float(loss[r]))
        improved = active & (loss < best_loss)
        if params.restore_best:
            for now, then in zip(current, kept):
                then[improved] = now[improved]
        best_loss[improved], best_epoch[improved] = loss[improved], epoch
        stopping = active & ((epoch - best_epoch) >= params.patience)
        if not params.restore_best:  # the weights at the stop are kept (finished heads keep stepping)
            for now, then in zip(current, kept):
                then[stopping] = now[stopping]
        active &= ~stopping
        if not active.any():
            break
    if not has_val:
        best, best_epoch = params_np.copy(), epochs_run.copy()
    elif not params.restore_best:
        for now, then in zip(current, kept):  # heads that ran to the budget: their last weights
            then[active] = now[active]
        best_epoch = epochs_run.copy()
    return [TrainResult(heads.layers(best, r), int(epochs_run[r]), int(best_epoch[r]), losses[r])
            for r in range(repeats)]


def _stream(train, y_train, hidden, classes, params, seeds) -> list[TrainResult]:
    """Streaming: all heads in lockstep on the same schedule, each on its own samples, with the firmware's own
    arithmetic (head_replay.stream_heads, bit for bit). Not torch: with batch-1 steps numpy's per-call cost, shared
    by the R heads, dominates anyway, and the batched matmuls' other summation order, amplified by the ring's
    repeated steps, moved single draws by up to 24 points (digits fc1, K = 8, momentum 0.9: 16 draws, measured)."""
    q_train, scale, zero_point = _stack(train)
    if zero_point:
        raise ValueError("train_heads: streaming trains on symmetric features (zero point 0), as the firmware")
    repeats, n, _ = q_train.shape
    q = q_train.reshape(repeats, n, -1)
    return head_replay.stream_heads(q, np.stack(y_train).reshape(repeats, n), scale, hidden, classes, params, seeds)


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
