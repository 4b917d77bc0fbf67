"""Integer kernels of the q7 reference against direct loops that spell out the C semantics, bit for bit."""
import numpy as np
import pytest

from models import intref
from models.quantize import frac_bits, get_scheme, list_schemes, quantize_tensor


def _ssat8(v: int) -> int:
    return max(-128, min(127, v))


def _finish(acc: int, out_shift: int) -> int:
    return _ssat8(acc >> out_shift)  # Python >> on int is an arithmetic shift, like ARM ASR


def slow_fc(x, w, b, bias_shift, out_shift):
    out = np.zeros((x.shape[0], w.shape[0]), np.int8)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            acc = (int(b[o]) << bias_shift) + (1 << (out_shift - 1))
            for k in range(w.shape[1]):
                acc += int(x[n, k]) * int(w[o, k])
            out[n, o] = _finish(acc, out_shift)
    return out


def slow_conv2d(x, w, b, bias_shift, out_shift, stride, padding):
    n_, h, wd, cin = x.shape
    cout, kh, kw, _ = w.shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n_, oh, ow, cout), np.int8)
    for n in range(n_):
        for oy in range(oh):
            for ox in range(ow):
                for o in range(cout):
                    acc = (int(b[o]) << bias_shift) + (1 << (out_shift - 1))
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * stride + ky - padding, ox * stride + kx - padding
                            if 0 <= iy < h and 0 <= ix < wd:
                                for c in range(cin):
                                    acc += int(x[n, iy, ix, c]) * int(w[o, ky, kx, c])
                    out[n, oy, ox, o] = _finish(acc, out_shift)
    return out


def slow_maxpool(x, k, s):
    n_, h, wd, c = x.shape
    oh, ow = (h - k) // s + 1, (wd - k) // s + 1
    out = np.zeros((n_, oh, ow, c), np.int8)
    for n in range(n_):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    out[n, oy, ox, ch] = max(int(x[n, oy * s + dy, ox * s + dx, ch]) for dy in range(k)
                                             for dx in range(k))
    return out


def rand_i8(rng, shape):
    return rng.integers(-128, 128, size=shape).astype(np.int8)


@pytest.mark.parametrize("seed", range(6))
def test_fc_matches_loop(seed):
    rng = np.random.default_rng(seed)
    n, k, o = rng.integers(1, 5), rng.integers(1, 40), rng.integers(1, 10)
    x, w, b = rand_i8(rng, (n, k)), rand_i8(rng, (o, k)), rand_i8(rng, (o,))
    bias_shift, out_shift = int(rng.integers(0, 6)), int(rng.integers(1, 12))
    assert np.array_equal(intref.fc_q7(x, w, b, bias_shift, out_shift), slow_fc(x, w, b, bias_shift, out_shift))


@pytest.mark.parametrize("seed", range(6))
def test_conv2d_matches_loop(seed):
    rng = np.random.default_rng(100 + seed)
    k, stride, padding = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    h, wd = int(rng.integers(k, 7)), int(rng.integers(k, 7))
    cin, cout, n = int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 3))
    x, w, b = rand_i8(rng, (n, h, wd, cin)), rand_i8(rng, (cout, k, k, cin)), rand_i8(rng, (cout,))
    bias_shift, out_shift = int(rng.integers(0, 6)), int(rng.integers(1, 12))
    got = intref.conv2d_q7(x, w, b, bias_shift, out_shift, stride, padding)
    assert np.array_equal(got, slow_conv2d(x, w, b, bias_shift, out_shift, stride, padding))


def test_conv1d_is_a_1xk_conv2d():
    rng = np.random.default_rng(7)
    x, w, b = rand_i8(rng, (2, 11, 3)), rand_i8(rng, (4, 3, 3)), rand_i8(rng, (4,))
    got = intref.conv1d_q7(x, w, b, 2, 7, stride=3, padding=1)
    want = slow_conv2d(np.pad(x, ((0, 0), (1, 1), (0, 0)))[:, None], w[:, None], b, 2, 7, 3, 0)[:, 0]
    assert got.shape == (2, 4, 4) and np.array_equal(got, want)


@pytest.mark.parametrize("k,s", [(2, 2), (3, 3), (2, 1)])
def test_maxpool_and_relu(k, s):
    rng = np.random.default_rng(k * 10 + s)
    x = rand_i8(rng, (2, 7, 6, 3))
    assert np.array_equal(intref.maxpool2d_q7(x, k, s), slow_maxpool(x, k, s))
    assert np.array_equal(intref.relu_q7(x), np.where(x > 0, x, 0).astype(np.int8))
    assert intref.relu_q7(x).dtype == np.int8


def test_rounding_and_saturation_edges():
    one = np.ones((1, 1), np.int8)
    # acc = x*w + round; out_shift 1 adds 1 before >> 1: exact .5 rounds up (towards +inf), also for negatives
    for prod, want in [(1, 1), (3, 2), (-1, 0), (-3, -1), (-2, -1), (5, 3)]:
        got = intref.fc_q7(np.array([[prod]], np.int8), one, np.zeros(1, np.int8), 0, 1)
        assert got[0, 0] == want, (prod, got)
    # negative accumulators shift arithmetically: -128*127 = -16256; (-16256 + 64) >> 7 = -127 (floor)
    got = intref.fc_q7(np.array([[-128]], np.int8), np.array([[127]], np.int8), np.zeros(1, np.int8), 0, 7)
    assert got[0, 0] == (-16256 + 64) >> 7 == -127
    # saturation at both ends
    big = np.full((1, 4), 127, np.int8)
    assert intref.fc_q7(big, big, np.zeros(1, np.int8), 0, 1)[0, 0] == 127
    assert intref.fc_q7(big, -big, np.zeros(1, np.int8), 0, 1)[0, 0] == -128
    # bias shift: bias -3 << 4 = -48, + round 4, >> 3 = -44 >> 3 = -6 (floor of -5.5)
    assert intref.fc_q7(np.zeros((1, 1), np.int8), one, np.array([-3], np.int8), 4, 3)[0, 0] == -6
    with pytest.raises(ValueError):
        intref.fc_q7(one, one, np.zeros(1, np.int8), 0, 0)  # out_shift must be >= 1


def test_quantize_input_rounding():
    x = np.array([0.5 / 64, 1.5 / 64, -0.5 / 64, -1.5 / 64, 2.0, -3.0, 0.49999997 / 64], np.float32)
    q = intref.quantize_input(x, 6)
    # floor(v + 0.5): halves round up; saturate to [-128, 127]; float32 arithmetic like C's floorf(x*s + 0.5f)
    assert q.tolist() == [1, 2, 0, -1, 127, -128, 1]
    assert q.dtype == np.int8
    assert intref.quantize_input(np.array([3.0], np.float32), -1).tolist() == [2]  # negative frac bits


def test_frac_bits_and_tensor_quantization():
    assert frac_bits(1.0) == 6  # 64 <= 127 < 128
    assert frac_bits(127 / 64) == 6 and frac_bits(127 / 64 + 1e-9) == 5
    assert frac_bits(127.0) == 0 and frac_bits(200.0) == -1 and frac_bits(0.0) == 7
    for m in np.random.default_rng(0).uniform(1e-3, 300, 200):
        f = frac_bits(m)
        assert m * 2.0**f <= 127 < m * 2.0 ** (f + 1)
    v = np.array([0.5, -0.5, 0.25, 1.0, -1.0], np.float64)
    assert quantize_tensor(v, 7).tolist() == [64, -64, 32, 127, -128]


def test_scheme_registry():
    assert "q7" in list_schemes()
    with pytest.raises(ValueError, match="q7"):
        get_scheme("s8_affine")
