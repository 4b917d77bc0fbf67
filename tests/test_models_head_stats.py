"""The lockstep trainer against the straightforward way (a per-repeat PyTorch loop with its own random init and
shuffles): over many repeats the two give statistically the same accuracy distribution (issue #6 part 2).

Real data: the 1,797 scikit-learn digits (10 classes), pixels as q7 int8 features; each repeat draws 100 samples
(90 train, 10 validation) and is tested on the rest. Seeds are fixed, so the test is deterministic. It also checks
that it can tell a real difference: the torch loop with a 3x smaller learning rate must be rejected.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import ks_2samp

from models.features import Features, dequantize
from models.head import SGDParams, accuracy, train_heads

REPEATS, SAMPLES, VAL, HIDDEN, CLASSES = 40, 100, 10, 16, 10
PARAMS = SGDParams(lr=0.02, momentum=0.9, decay=1e-4, batch=8, epochs=15, patience=4)


@pytest.fixture(scope="module")
def task():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    q = np.clip(np.round(x * (127 / 16)), -128, 127).astype(np.int8)  # q7 with 7 fractional bits: x / 16
    draws = []
    for r in range(REPEATS):
        idx = np.random.default_rng([7, r]).permutation(len(y))
        draws.append((idx[:SAMPLES - VAL], idx[SAMPLES - VAL:SAMPLES], idx[SAMPLES:]))
    return Features(q, 7), y, draws


def lockstep_accuracies(pool, y, draws):
    results = train_heads([pool.subset(t) for t, _, _ in draws], [y[t] for t, _, _ in draws],
                          [pool.subset(v) for _, v, _ in draws], [y[v] for _, v, _ in draws],
                          HIDDEN, CLASSES, PARAMS, [1000 + r for r in range(len(draws))])
    return np.array([accuracy(res.weights, pool.subset(s), y[s]) for res, (_, _, s) in zip(results, draws)])


def torch_loop_accuracies(pool, y, draws, params):
    """One repeat after another: same method (uniform(+-1/sqrt(fan_in)) weights, zero biases, shuffled batches,
    torch.optim.SGD, early stopping keeping the best weights), torch's own random numbers."""
    x_all, y_all = torch.from_numpy(dequantize(pool)), torch.from_numpy(y)
    out = []
    for r, (t, v, s) in enumerate(draws):
        torch.manual_seed(r)
        head = torch.nn.Sequential(torch.nn.Linear(64, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, CLASSES))
        with torch.no_grad():
            for layer in (head[0], head[2]):
                bound = 1 / layer.in_features ** 0.5
                layer.weight.uniform_(-bound, bound)
                layer.bias.zero_()
        opt = torch.optim.SGD(head.parameters(), lr=params.lr, momentum=params.momentum,
                              weight_decay=params.decay)
        xt, yt, xv, yv = x_all[t], y_all[t], x_all[v], y_all[v]
        best, best_loss, since = None, float("inf"), 0
        for _ in range(params.epochs):
            order = torch.randperm(len(t))
            for i in range(0, len(t), params.batch):
                idx = order[i:i + params.batch]
                opt.zero_grad()
                F.cross_entropy(head(xt[idx]), yt[idx]).backward()
                opt.step()
            with torch.no_grad():
                loss = float(F.cross_entropy(head(xv), yv))
            if loss < best_loss:
                best, best_loss, since = {k: p.clone() for k, p in head.state_dict().items()}, loss, 0
            else:
                since += 1
                if since >= params.patience:
                    break
        head.load_state_dict(best)
        with torch.no_grad():
            out.append(float((head(x_all[s]).argmax(1) == y_all[s]).float().mean()))
    return np.array(out)


def test_lockstep_matches_per_repeat_torch_loop_statistically(task):
    pool, y, draws = task
    ours = lockstep_accuracies(pool, y, draws)
    loop = torch_loop_accuracies(pool, y, draws, PARAMS)
    assert 0.5 < loop.mean() < 0.95 and loop.std() > 0.01  # a task with spread, not a ceiling
    assert ks_2samp(ours, loop).pvalue > 0.05, (ours.mean(), loop.mean())
    # paired by draw: the mean difference within 3 standard errors, and within 2 accuracy points
    diff = ours - loop
    assert abs(diff.mean()) <= 3 * diff.std(ddof=1) / np.sqrt(len(diff)) and abs(diff.mean()) < 0.02
    assert ours.std(ddof=1) == pytest.approx(loop.std(ddof=1), rel=0.5)
    # the comparison has power: a loop that learns 3x slower is told apart
    slow = torch_loop_accuracies(pool, y, draws, SGDParams(**{**PARAMS.__dict__, "lr": PARAMS.lr / 3}))
    assert ks_2samp(ours, slow).pvalue < 0.01, (ours.mean(), slow.mean())
