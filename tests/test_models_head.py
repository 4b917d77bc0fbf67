"""Head training (numpy, hand-written backward) against torch autograd + SGD, early stopping, and simulate()."""
import numpy as np
import pytest
import torch

from vocabulary.configuration import Configuration
from models.features import Features, dequantize
from models import prng
from models.head import SGDParams, accuracy, init_head, train_head, train_heads
from models.simulate import AccuracyStats, derive_seeds, prepare, simulate


def _features(seed, n=50, f=40):
    rng = np.random.default_rng(seed)
    return Features(rng.integers(-128, 128, size=(n, f)).astype(np.int8), 5), rng.integers(0, 3, n)


@pytest.mark.parametrize("hidden,momentum,batch", [(0, 0.9, 8), (16, 0.9, 8), (0, 0.0, 1), (16, 0.0, 1),
                                                   (16, 0.0, 8)])
def test_head_matches_torch_sgd(hidden, momentum, batch):
    """The update rule is torch.optim.SGD's, momentum 0 and batch 1 (the firmware's bufferless path) included."""
    train, y = _features(0)
    no_val = Features(train.q[:0], 5)
    params = SGDParams(lr=0.05, momentum=momentum, decay=1e-3, batch=batch, epochs=3, patience=100)
    ours = train_head(train, y, no_val, y[:0], hidden, 3, params, seed=7)
    assert ours.epochs_run == 3 and ours.best_epoch == 3  # no validation set: the final weights are kept

    # torch replica: same init and batch order (models.prng: the init streams, then one shuffle per epoch)
    linears = []
    for w, b in init_head(40, hidden, 3, 7):
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        linear.weight.data, linear.bias.data = torch.from_numpy(w.copy()), torch.from_numpy(b.copy())
        linears.append(linear)
    net = torch.nn.Sequential(linears[0], torch.nn.ReLU(), linears[1]) if hidden else linears[0]
    optimizer = torch.optim.SGD(net.parameters(), lr=params.lr, momentum=params.momentum,
                                weight_decay=params.decay)
    x, labels = torch.from_numpy(dequantize(train)), torch.from_numpy(y)
    for epoch in range(1, 4):
        order = prng.shuffle(7, epoch, len(y))
        for start in range(0, len(y), params.batch):  # 50 = 6 x 8 + 2: the last batch is smaller
            idx = torch.from_numpy(order[start:start + params.batch])
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x[idx]), labels[idx]).backward()
            optimizer.step()
    for (w, b), linear in zip(ours.weights, linears):
        np.testing.assert_allclose(w, linear.weight.detach().numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(b, linear.bias.detach().numpy(), atol=1e-5, rtol=0)


def test_early_stopping_keeps_best():
    train, y = _features(1)
    val, y_val = _features(2, n=20)  # random labels: validation loss stops improving quickly
    params = SGDParams(lr=0.05, epochs=200, patience=3)
    result = train_head(train, y, val, y_val, 8, 3, params, seed=0)
    assert result.epochs_run < 200
    assert result.epochs_run == result.best_epoch + 3
    assert len(result.val_losses) == result.epochs_run
    assert min(result.val_losses) == result.val_losses[result.best_epoch - 1]
    assert accuracy(result.weights, val, y_val) == accuracy(result.weights, dequantize(val), y_val)


def test_without_restore_best_the_last_weights_are_kept():
    """Early stopping still stops after `patience` epochs without improvement; the weights of that last epoch are
    kept: the same as a run of exactly that many epochs that never stops early."""
    train, y = _features(1)
    val, y_val = _features(2, n=20)
    stopped = train_head(train, y, val, y_val, 8, 3, SGDParams(lr=0.05, epochs=200, patience=3, restore_best=False),
                         seed=0)
    assert stopped.epochs_run < 200 and stopped.best_epoch == stopped.epochs_run
    budget = train_head(train, y, val, y_val, 8, 3, SGDParams(lr=0.05, epochs=stopped.epochs_run, patience=1000,
                                                              restore_best=False), seed=0)
    best = train_head(train, y, val, y_val, 8, 3, SGDParams(lr=0.05, epochs=200, patience=3), seed=0)
    assert best.epochs_run == stopped.epochs_run and best.best_epoch < stopped.epochs_run
    for (wa, ba), (wb, bb), (wc, _) in zip(stopped.weights, budget.weights, best.weights):
        assert np.array_equal(wa, wb) and np.array_equal(ba, bb) and not np.array_equal(wa, wc)


@pytest.mark.parametrize("restore_best", [True, False])
def test_repeats_in_lockstep_equal_separate_runs(restore_best):
    """Heads that stop early keep stepping in lockstep: what they keep (the best or, without restore_best, the
    stopping epoch's weights) must not depend on the other heads."""
    parts = [_features(10 + r) for r in range(3)]
    vals = [_features(20 + r, n=6) for r in range(3)]
    params = SGDParams(epochs=15, patience=2, restore_best=restore_best)
    together = train_heads([p[0] for p in parts], [p[1] for p in parts], [v[0] for v in vals],
                           [v[1] for v in vals], 8, 3, params, [5, 6, 7])
    for r in range(3):
        alone = train_head(parts[r][0], parts[r][1], vals[r][0], vals[r][1], 8, 3, params, 5 + r)
        assert alone.epochs_run == together[r].epochs_run and alone.best_epoch == together[r].best_epoch
        if not restore_best:
            assert alone.best_epoch == alone.epochs_run
        for (wa, ba), (wb, bb) in zip(alone.weights, together[r].weights):
            assert np.array_equal(wa, wb) and np.array_equal(ba, bb)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "models-cache"  # shared with the other test files of the session
    prepare("digits", "digits_cnn", cache_dir=path, cuts=("pool2",))
    return path


def test_simulate_digits(cache_dir):
    config = Configuration("digits", "digits_cnn", "pool2", hidden=16, samples=90, epochs=30)
    stats = simulate(config, repeats=3, seed=0, cache_dir=cache_dir)
    assert isinstance(stats, AccuracyStats)
    assert stats.mean > 0.8, stats
    assert len(stats.per_repeat) == 3 and len(stats.epochs_per_repeat) == 3
    assert stats.std == pytest.approx(np.std(stats.per_repeat, ddof=1))
    assert stats.feature_bytes == 128 and stats.test_size == 178
    assert all(1 <= e <= 30 for e in stats.epochs_per_repeat)
    again = simulate(config, repeats=3, seed=0, cache_dir=cache_dir)
    assert again.per_repeat == stats.per_repeat and again.epochs_per_repeat == stats.epochs_per_repeat
    assert simulate(config, repeats=3, seed=1, cache_dir=cache_dir).per_repeat != stats.per_repeat
    assert simulate(config, repeats=1, seed=0, cache_dir=cache_dir).std == 0.0
    assert len(set(derive_seeds(0, 0) + derive_seeds(0, 1))) == 4


def test_simulate_validates(cache_dir):
    def run(**changes):
        base = dict(task="digits", model="digits_cnn", cut="pool2", hidden=0, samples=30, epochs=2)
        return simulate(Configuration(**{**base, **changes}), repeats=1, seed=0, cache_dir=cache_dir)

    with pytest.raises(ValueError, match="zoo has"):
        run(model="no_such_model")
    with pytest.raises(ValueError, match="choose one of: conv1, conv2, pool2, fc1"):
        run(cut="classifier")
    with pytest.raises(ValueError, match=r"input \(32, 32, 3\)"):
        run(model="cifar_cnn", cut="conv3")
    with pytest.raises(ValueError, match="maximum is 348"):
        run(samples=349)
    with pytest.raises(ValueError, match="known: q7"):
        run(scheme="affine")
    assert run(samples=348).test_size == 178


def test_prng_reference_values():
    """Pinned values: the firmware's C generator is checked against the same numbers."""
    assert prng.mix32(np.array([0, 1, 0xFFFFFFFF], np.uint32)).tolist() == [0, 1753845952, 1734902346]
    assert prng.rand_u32(1, 2, np.arange(3)).tolist() == [1681833769, 410543802, 478570358]
    assert prng.shuffle(3, 1, 10).tolist() == [0, 4, 1, 2, 3, 6, 7, 9, 8, 5]
    w = prng.init_uniform(7, 0, 2, 3)
    assert w.dtype == np.float32 and np.all(np.abs(w) <= 1 / np.sqrt(np.float32(3)))


@pytest.mark.parametrize("hidden", [0, 64])
def test_lockstep_independent_of_repeats_and_threads(hidden):
    """Bigger heads than above (several blocks of the SGD update, an uneven last batch), both head shapes: a repeat's
    weights do not depend on R, nor on torch's thread count (study workers use 1 thread, benchmarks 2)."""
    parts = [_features(30 + r, n=45, f=300) for r in range(4)]
    vals = [_features(40 + r, n=7, f=300) for r in range(4)]
    params = SGDParams(lr=0.02, epochs=6, patience=2)

    def run(rs):
        return train_heads([parts[r][0] for r in rs], [parts[r][1] for r in rs], [vals[r][0] for r in rs],
                           [vals[r][1] for r in rs], hidden, 3, params, [50 + r for r in rs])

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        together = run(range(4))
        torch.set_num_threads(1)
        alone = [run([r])[0] for r in range(4)] + [run(range(4))[3]]
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(alone, together + [together[3]]):
        assert (a.epochs_run, a.best_epoch, a.val_losses) == (b.epochs_run, b.best_epoch, b.val_losses)
        for (wa, ba), (wb, bb) in zip(a.weights, b.weights):
            assert np.array_equal(wa, wb) and np.array_equal(ba, bb)
