"""LSTM / GRU: the float network has torch's semantics (the numpy references below say which), the integer
reference approximates it within stated tolerances layer by layer, and the whole har_rnn, pretrained on synthetic
sensor windows, quantizes and agrees with its float network."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models import intref_rnn as R
from models.network import build, predict, single_thread
from models.quantize import agreement, forward_int, frac_bits, quantize, quantize_input, quantize_q15_bias
from models.quantize import quantize_tensor
from models.zoo import get_model


def sensor_windows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 128, 9) windows like UCI HAR's inertial signals (50 Hz, 2.56 s), 3 classes: per channel a sine mixture
    with a class-specific base frequency (0.6 / 1.4 / 2.6 Hz, +-15%), its harmonic, random phases and amplitudes,
    Gaussian noise and, for class 2, a per-axis offset (posture); min-max normalised per axis to [0, 1]."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = np.arange(128) / 50.0
    base = np.array([0.6, 1.4, 2.6])[y]
    x = np.zeros((n, 128, 9))
    for c in range(9):
        f1 = (base * rng.uniform(0.85, 1.15, n))[:, None]
        x[:, :, c] = (rng.uniform(0.5, 1.5, n)[:, None] * np.sin(2 * np.pi * f1 * t + rng.uniform(0, 6.3, (n, 1)))
                      + 0.5 * rng.uniform(0, 1, (n, 1)) * np.sin(4 * np.pi * f1 * t + rng.uniform(0, 6.3, (n, 1)))
                      + 0.3 * rng.standard_normal((n, 128)) + (c % 3 - 1) * 0.5 * (y[:, None] == 2))
    lo, hi = x.min(axis=(0, 1)), x.max(axis=(0, 1))
    return ((x - lo) / (hi - lo)).astype(np.float32), y


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_float_reference_is_torch(kind):
    """Gate order (LSTM i, f, g, o; GRU r, z, n) and the GRU's reset gate on (W_hn h + b_hn): the numpy
    references, which the integer kernels follow, reproduce torch's modules (what pretraining trains)."""
    torch.manual_seed(3)
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(5, 7, batch_first=True)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-1, 1)  # large weights: every gate matters, a swapped gate shows
    x = np.random.default_rng(0).uniform(-1, 1, (3, 11, 5))
    want = module(torch.from_numpy(x).float())[0].detach().numpy()
    params = [getattr(module, n).detach().numpy().astype(np.float64)
              for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    got = (R.lstm_float if kind == "lstm" else R.gru_float)(x, *params)
    np.testing.assert_allclose(got, want, atol=2e-6)
    if kind == "gru":  # the other placement (r applied to W_hn h before adding b_hn) is measurably different
        w_ih, w_hh, b_ih, b_hh = params
        other = R.gru_float(x, w_ih, w_hh, b_ih + np.r_[np.zeros(14), b_hh[14:]], b_hh * np.r_[np.ones(14), np.zeros(7)])
        assert np.abs(other - want).max() > 1e-2


@pytest.mark.parametrize("kind,in_dim,units,in_bits,out_bits", [
    ("lstm", 9, 32, 8, 8), ("gru", 32, 64, 8, 16), ("gru", 64, 32, 16, 16), ("gru", 32, 6, 16, 8)])
def test_integer_layer_against_float(kind, in_dim, units, in_bits, out_bits):
    """One layer with torch's initialisation scaled x3 (pretrained-like: saturating gates occur) on smooth inputs
    in [-1, 1]; the integer output dequantized vs the float output of the same quantized input.
    Tolerance: mean |error| <= 0.5 output LSB for int8 outputs; for int16 outputs (LSB 2^-15) the int8 weights
    dominate, amplified through the recurrence: mean |error| <= 1% of the mean |float output| (measured 0.6-0.8%),
    max <= 0.1 (measured 0.04-0.07) on outputs in (-1, 1)."""
    torch.manual_seed(in_dim * units)
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(in_dim, units, batch_first=True)
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(3.0)
    w_ih, w_hh, b_ih, b_hh = (getattr(module, n).detach().numpy().astype(np.float64)
                              for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
    rng = np.random.default_rng(units)
    t = np.arange(43)[None, :, None]
    x = np.sin(t * rng.uniform(0.05, 0.5, (64, 1, in_dim)) + rng.uniform(0, 6.3, (64, 1, in_dim)))
    x *= rng.uniform(0.3, 1.0, (64, 1, in_dim))
    f_x = frac_bits(np.abs(x).max(), in_bits)
    x_q = np.clip(np.floor(x * 2.0**f_x + 0.5), -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1)
    x_q = x_q.astype(np.int8 if in_bits == 8 else np.int16)
    ref = (R.lstm_float if kind == "lstm" else R.gru_float)(x_q / 2.0**f_x, w_ih, w_hh, b_ih, b_hh)
    f_out = min(frac_bits(np.abs(ref).max(), out_bits), 15)
    f_wx, f_wh = frac_bits(np.abs(w_ih).max()), frac_bits(np.abs(w_hh).max())
    bias = quantize_q15_bias(b_ih + b_hh if kind == "lstm" else np.concatenate([b_ih, b_hh]))
    fn = R.lstm_q7 if kind == "lstm" else R.gru_q7
    out = fn(x_q, quantize_tensor(w_ih, f_wx), quantize_tensor(w_hh, f_wh), bias, f_x + f_wx - 12,
             f_out + f_wh - 12, f_out, out_bits)
    assert out.dtype == (np.int8 if out_bits == 8 else np.int16) and out.shape == (64, 43, units)
    err = np.abs(out / 2.0**f_out - ref)
    if out_bits == 8:
        assert err.mean() * 2.0**f_out <= 0.5, err.mean() * 2.0**f_out
    else:
        assert err.mean() <= 0.01 * np.abs(ref).mean() and err.max() <= 0.1, (err.mean(), err.max())
    assert np.abs(ref).max() > 0.5  # the layer is not idling near zero


@pytest.fixture(scope="module")
def har_rnn():
    """har_rnn pretrained (Adam, 8 epochs) on 600 synthetic windows; 300 held-out windows."""
    x, y = sensor_windows(900, 0)
    net = build(get_model("har_rnn"), 0)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    xt, yt = torch.from_numpy(x[:600]), torch.from_numpy(y[:600])
    net.train()
    with single_thread():
        for _ in range(8):
            order = torch.randperm(600, generator=gen)
            for s in range(0, 600, 32):
                idx = order[s:s + 32]
                opt.zero_grad()
                F.cross_entropy(net(xt[idx]), yt[idx]).backward()
                opt.step()
    net.eval()
    return net, quantize(net, x[:600]), x[600:], y[600:]


def test_har_rnn_quantizes_end_to_end(har_rnn):
    """Every layer of har_rnn runs in integers; top-1 agreement with the float network >= 97% on 300 held-out
    windows (measured: 99.7%), both clearly above chance; per-layer errors bounded (int8 layers in output LSB,
    int16 layers relative to the signal, since their 2^-15 LSB is finer than the int8 weights)."""
    net, qmodel, x, y = har_rnn
    float_logits = predict(net, x)
    x_q = quantize_input(qmodel, x)
    int_logits = forward_int(qmodel, x_q)
    assert agreement(float_logits, int_logits) >= 0.97
    assert (float_logits.argmax(1) == y).mean() >= 0.7 and (int_logits.argmax(1) == y).mean() >= 0.7
    widths = {"conv1": 8, "lstm1": 8, "gru1": 16, "gru2": 16, "gru3": 8}
    for name, bits in widths.items():
        layer = qmodel.layer(name)
        out = forward_int(qmodel, x_q, name)
        assert out.dtype == np.dtype(f"int{bits}") and layer.out_bits == bits
        fo = predict(net, x, name)
        err = np.abs(out / 2.0**layer.f_out - fo)
        if bits == 8:
            assert err.mean() * 2.0**layer.f_out <= 1.0, (name, err.mean() * 2.0**layer.f_out)
        else:
            assert err.mean() <= 0.03 * np.abs(fo).mean(), (name, err.mean(), np.abs(fo).mean())
    assert qmodel.layer("gru1").in_bits == 8 and qmodel.layer("gru2").in_bits == 16


def test_har_rnn_bytes_match_table_i(har_rnn):
    """The stored output of each cut has the zoo's (Table I's) byte count."""
    net, qmodel, x, _ = har_rnn
    out = {name: forward_int(qmodel, quantize_input(qmodel, x[:2]), name)[0] for name in ("lstm1", "gru1", "gru2", "gru3")}
    assert {n: v.nbytes for n, v in out.items()} == {"lstm1": 1376, "gru1": 5504, "gru2": 2752, "gru3": 258}
