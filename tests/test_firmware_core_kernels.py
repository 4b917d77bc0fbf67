"""The firmware's C kernels and prng against the Python references, bit for bit (compiled once for the host and
called through ctypes)."""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from firmware.build import C_DIR
from models import intref, prng

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")

STUB_MODEL_H = """#define DSE_N_SAMPLES 4u
#define DSE_N_TRAIN 3u
#define DSE_N_VAL 1u
#define DSE_FEATURE 4u
#define DSE_FEATURE_SCALE 0x1p-4f
#define DSE_HIDDEN 0u
#define DSE_CLASSES 2u
#define DSE_BATCH 2u
#define DSE_EPOCHS 1u
#define DSE_PATIENCE 1u
#define DSE_LR 0x1p-7f
#define DSE_MOMENTUM 0x1.ccccccp-1f
#define DSE_DECAY 0x1.a36e2ep-14f
#define DSE_HEAD_SEED 0u
"""

P8 = ctypes.POINTER(ctypes.c_int8)
U16 = ctypes.c_uint16
P16 = ctypes.POINTER(ctypes.c_int16)  # scratch: NULL for the portable kernels


class Dims(ctypes.Structure):  # nn_dims (nn_q7.h)
    _fields_ = [("h", U16), ("w", U16), ("c", U16)]


class ConvParams(ctypes.Structure):  # nn_conv_params
    _fields_ = [("in_", Dims), ("out", Dims), ("k", U16), ("padding", U16), ("stride", U16), ("bias_shift", U16),
                ("out_shift", U16)]


class PoolParams(ctypes.Structure):  # nn_pool_params
    _fields_ = [("in_", Dims), ("out", Dims), ("k", U16), ("stride", U16)]


class FcParams(ctypes.Structure):  # nn_fc_params
    _fields_ = [("dim_vec", U16), ("num_rows", U16), ("bias_shift", U16), ("out_shift", U16)]


def _conv(h, w, cin, cout, k, padding, stride, bs, os_, oh, ow):
    return ctypes.byref(ConvParams(Dims(h, w, cin), Dims(oh, ow, cout), k, padding, stride, bs, os_))


def _pool(h, w, c, k, stride, oh, ow):
    return ctypes.byref(PoolParams(Dims(h, w, c), Dims(oh, ow, c), k, stride))


def _fc(dim, rows, bs, os_):
    return ctypes.byref(FcParams(dim, rows, bs, os_))


@pytest.fixture(scope="session")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("kernels")
    (d / "dse_model.h").write_text(STUB_MODEL_H)
    so = d / "libfw.so"
    subprocess.run(["cc", "-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Werror", "-fPIC", "-shared",
                    f"-I{d}", f"-I{C_DIR}", str(C_DIR / "nn_q7.c"), str(C_DIR / "microtl.c"), "-o", str(so), "-lm"],
                   check=True)
    lib = ctypes.CDLL(str(so))
    scratch = ctypes.c_void_p  # q15_t *: the portable kernels ignore it (None)
    conv, pool, fc = (ctypes.POINTER(s) for s in (ConvParams, PoolParams, FcParams))
    lib.nn_conv2d_q7.argtypes = [conv, P8, P8, P8, P8, scratch]
    lib.nn_conv2d_rows_q7.argtypes = [conv, P8, P8, P8, P8, U16, U16, scratch]
    lib.nn_conv1d_q7.argtypes = [conv, P8, P8, P8, P8, scratch]
    lib.nn_maxpool2d_q7.argtypes = [pool, P8, P8]
    lib.nn_relu_q7.argtypes = [P8, ctypes.c_uint32]
    lib.nn_fc_q7.argtypes = [fc, P8, P8, P8, P8, scratch]
    u32 = ctypes.c_uint32
    lib.mt_mix32.argtypes, lib.mt_mix32.restype = [u32], u32
    lib.mt_rand_u32.argtypes, lib.mt_rand_u32.restype = [u32, u32, u32], u32
    lib.mt_uniform01.argtypes, lib.mt_uniform01.restype = [u32, u32, u32], ctypes.c_float
    lib.mt_init_uniform.argtypes = [u32, u32, u32, u32, ctypes.POINTER(ctypes.c_float)]
    lib.mt_shuffle.argtypes = [u32, u32, u32, ctypes.POINTER(ctypes.c_uint16)]
    lib.mt_fnv1a.argtypes, lib.mt_fnv1a.restype = [u32, ctypes.c_void_p, u32], u32
    return lib


def _p(a: np.ndarray):
    assert a.dtype == np.int8 and a.flags.c_contiguous
    return a.ctypes.data_as(P8)


def _random_int8(rng, shape, extremes=False):
    if extremes:  # many -128 / 127 values: saturation and sign edges
        return rng.choice(np.array([-128, -127, -1, 0, 1, 126, 127], np.int8), size=shape)
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def _shifts(rng):
    out_shift = int(rng.choice([1, 2, 5, 7, 8, 10, 12, 15, 20, 31]))
    bias_shift = int(rng.choice([0, 1, 3, 6, 8, 12, 16, 22]))
    return bias_shift, out_shift


def _cases(n):
    return [pytest.param(seed, id=f"s{seed}") for seed in range(n)]


@pytest.mark.parametrize("seed", _cases(60))
def test_conv2d_bit_exact(lib, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 4))
    h, w = int(rng.integers(k, 10)), int(rng.integers(k, 10))
    cin, cout = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, k))
    x = _random_int8(rng, (1, h, w, cin), extremes=seed % 3 == 0)
    wt = _random_int8(rng, (cout, k, k, cin), extremes=seed % 3 == 0)
    b = _random_int8(rng, (cout,), extremes=seed % 2 == 0)
    bs, os_ = _shifts(rng)
    try:
        ref = intref.conv2d_q7(x, wt, b, bs, os_, stride, padding)[0]
    except OverflowError:
        pytest.skip("accumulator out of int32 (the reference refuses it)")
    out = np.full(ref.shape, 99, np.int8)
    lib.nn_conv2d_q7(_conv(h, w, cin, cout, k, padding, stride, bs, os_, *ref.shape[:2]), _p(x), _p(wt), _p(b),
                     _p(out), None)
    np.testing.assert_array_equal(out, ref)


def _conv_case(rng, seed):
    """A random conv2d (padding up to k - 1, stride 1-2) and its reference output, or None past int32."""
    k = int(rng.integers(1, 4))
    h, w = int(rng.integers(k, 11)), int(rng.integers(k, 9))
    cin, cout = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, k))
    x = _random_int8(rng, (1, h, w, cin), extremes=seed % 3 == 0)
    wt = _random_int8(rng, (cout, k, k, cin), extremes=seed % 3 == 0)
    b = _random_int8(rng, (cout,), extremes=seed % 2 == 0)
    bs, os_ = _shifts(rng)
    try:
        ref = intref.conv2d_q7(x, wt, b, bs, os_, stride, padding)[0]
    except OverflowError:
        return None
    return (x, h, w, cin, wt, cout, k, padding, stride, b, bs, os_), ref


@pytest.mark.parametrize("seed", _cases(40))
def test_conv2d_rows_every_band_equals_full_conv(lib, seed):
    """Every band [oy0, oy1) of nn_conv2d_rows_q7 equals the same rows of the full convolution (top and bottom
    bands read the zero padding), written from out[0] on and not one byte further."""
    rng = np.random.default_rng(1000 + seed)
    case = _conv_case(rng, seed)
    if case is None:
        pytest.skip("accumulator out of int32 (the reference refuses it)")
    (x, h, w, cin, wt, cout, k, padding, stride, b, bs, os_), ref = case
    oh, ow = ref.shape[:2]
    row = ow * cout
    for oy0 in range(oh):
        for oy1 in range(oy0 + 1, oh + 1):
            out = np.full((oy1 - oy0) * row + 8, 99, np.int8)
            lib.nn_conv2d_rows_q7(_conv(h, w, cin, cout, k, padding, stride, bs, os_, oh, ow), _p(x), _p(wt),
                                  _p(b), _p(out), oy0, oy1, None)
            np.testing.assert_array_equal(out[:-8].reshape(oy1 - oy0, ow, cout), ref[oy0:oy1])
            assert (out[-8:] == 99).all(), f"band [{oy0}, {oy1}) wrote past its rows"


@pytest.mark.parametrize("seed", _cases(40))
def test_fused_conv_pool_equals_conv_then_pool(lib, seed):
    """codegen's fused conv -> max pool (per pool row: conv rows [r*s, r*s + k) into a band, pool the band into
    row r; ReLU after the pool) equals conv, ReLU, pool of the reference - with overlapping pools (s < k), which
    recompute rows, and floor-cropped rows, which are never computed."""
    rng = np.random.default_rng(2000 + seed)
    case = _conv_case(rng, seed)
    if case is None:
        pytest.skip("accumulator out of int32 (the reference refuses it)")
    (x, h, w, cin, wt, cout, k, padding, stride, b, bs, os_), conv = case
    oh, ow = conv.shape[:2]
    kp = int(rng.integers(1, min(oh, ow, 3) + 1))
    sp = int(rng.integers(1, 3))
    ref = intref.maxpool2d_q7(intref.relu_q7(conv)[None], kp, sp)[0]
    ph, pw = ref.shape[:2]
    band = np.full(kp * ow * cout, 99, np.int8)
    out = np.full(ref.size, 99, np.int8)
    row = pw * cout
    for r in range(ph):
        lib.nn_conv2d_rows_q7(_conv(h, w, cin, cout, k, padding, stride, bs, os_, oh, ow), _p(x), _p(wt), _p(b),
                              _p(band), r * sp, r * sp + kp, None)
        pooled = np.full(row, 99, np.int8)
        lib.nn_maxpool2d_q7(_pool(kp, ow, cout, kp, sp, 1, pw), _p(band), _p(pooled))
        out[r * row:(r + 1) * row] = pooled
    lib.nn_relu_q7(_p(out), out.size)
    np.testing.assert_array_equal(out.reshape(ref.shape), ref)


@pytest.mark.parametrize("seed", _cases(40))
def test_conv1d_bit_exact(lib, seed):
    rng = np.random.default_rng(100 + seed)
    k = int(rng.integers(1, 5))
    steps, cin, cout = int(rng.integers(k, 20)), int(rng.integers(1, 7)), int(rng.integers(1, 6))
    stride, padding = int(rng.integers(1, 4)), int(rng.integers(0, k))
    x = _random_int8(rng, (1, steps, cin), extremes=seed % 3 == 0)
    wt = _random_int8(rng, (cout, k, cin), extremes=seed % 3 == 0)
    b = _random_int8(rng, (cout,))
    bs, os_ = _shifts(rng)
    try:
        ref = intref.conv1d_q7(x, wt, b, bs, os_, stride, padding)[0]
    except OverflowError:
        pytest.skip("accumulator out of int32")
    out = np.full(ref.shape, 99, np.int8)
    lib.nn_conv1d_q7(_conv(1, steps, cin, cout, k, padding, stride, bs, os_, 1, ref.shape[0]), _p(x), _p(wt), _p(b),
                     _p(out), None)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("seed", _cases(30))
def test_fc_bit_exact(lib, seed):
    rng = np.random.default_rng(200 + seed)
    dim, rows = int(rng.integers(1, 300)), int(rng.integers(1, 40))
    x = _random_int8(rng, (1, dim), extremes=seed % 3 == 0)
    wt = _random_int8(rng, (rows, dim), extremes=seed % 3 == 0)
    b = _random_int8(rng, (rows,), extremes=seed % 2 == 0)
    bs, os_ = _shifts(rng)
    try:
        ref = intref.fc_q7(x, wt, b, bs, os_)[0]
    except OverflowError:
        pytest.skip("accumulator out of int32")
    out = np.full(ref.shape, 99, np.int8)
    lib.nn_fc_q7(_fc(dim, rows, bs, os_), _p(x), _p(wt), _p(b), _p(out), None)
    np.testing.assert_array_equal(out, ref)


def test_fc_rounding_and_saturation_edges(lib):
    """Round half up at the shift, floor of negatives (arithmetic shift), clamping at both ends, big bias shifts."""
    cases = [  # (x, w, bias, bias_shift, out_shift)
        ([1], [1], [0], 0, 1),          # (0 + 1 + 1) >> 1 = 1
        ([-1], [1], [0], 0, 1),         # (0 + 1 - 1) >> 1 = 0
        ([-1], [3], [0], 0, 1),         # (1 - 3) >> 1 = -1
        ([-3], [1], [0], 0, 2),         # (2 - 3) >> 2 = -1 (floor)
        ([127], [127], [127], 8, 1),    # saturates at 127
        ([-128], [127], [-128], 8, 1),  # saturates at -128
        ([-128], [-128], [0], 0, 7),    # 16384 + 64 >> 7 = 128 -> 127
        ([0], [0], [-128], 24, 31),     # bias term -2^31 exactly, + 2^30 >> 31 = -1
        ([0], [0], [127], 23, 31),      # (127 << 23) + 2^30 >> 31 = 0
        ([0], [0], [-1], 31, 31),       # -2^31 + 2^30 >> 31 = -1
        ([127] * 8, [127] * 8, [0], 0, 31),
    ]
    for x, w, b, bs, os_ in cases:
        x8, w8, b8 = (np.array(v, np.int8) for v in (x, w, b))
        ref = intref.fc_q7(x8[None], w8[None], b8, bs, os_)[0]
        out = np.zeros(1, np.int8)
        lib.nn_fc_q7(_fc(len(x), 1, bs, os_), _p(x8), _p(w8[None].copy()), _p(b8), _p(out), None)
        assert out[0] == ref[0], (x, w, b, bs, os_)


@pytest.mark.parametrize("seed", _cases(20))
def test_maxpool_and_relu_bit_exact(lib, seed):
    rng = np.random.default_rng(300 + seed)
    k = int(rng.integers(1, 4))
    stride = int(rng.integers(1, 4))
    h, w, c = int(rng.integers(k, 12)), int(rng.integers(k, 12)), int(rng.integers(1, 6))
    x = _random_int8(rng, (1, h, w, c), extremes=seed % 2 == 0)
    ref = intref.maxpool2d_q7(x, k, stride)[0]
    out = np.full(ref.shape, 99, np.int8)
    lib.nn_maxpool2d_q7(_pool(h, w, c, k, stride, *ref.shape[:2]), _p(x), _p(out))
    np.testing.assert_array_equal(out, ref)
    y = x.copy()
    lib.nn_relu_q7(_p(y), y.size)
    np.testing.assert_array_equal(y, intref.relu_q7(x))


def test_prng_pinned_values(lib):
    """The values pinned in tests/test_models_head.py::test_prng_reference_values."""
    assert [lib.mt_mix32(v) for v in (0, 1, 0xFFFFFFFF)] == [0, 1753845952, 1734902346]
    assert [lib.mt_rand_u32(1, 2, i) for i in range(3)] == [1681833769, 410543802, 478570358]
    order = (ctypes.c_uint16 * 10)()
    lib.mt_shuffle(3, 1, 10, order)
    assert list(order) == [0, 4, 1, 2, 3, 6, 7, 9, 8, 5]


@pytest.mark.parametrize("seed", [0, 7, 123456789, 0xFFFFFFFF])
def test_prng_matches_python(lib, seed):
    idx = np.arange(500)
    stream = prng.SHUFFLE_STREAM + 3
    assert [lib.mt_rand_u32(seed, stream, int(i)) for i in idx] == prng.rand_u32(seed, stream, idx).tolist()
    assert np.array([lib.mt_uniform01(seed, 5, int(i)) for i in idx], np.float32).tobytes() == \
        prng.uniform01(seed, 5, idx).tobytes()
    for layer, fan_out, fan_in in [(0, 3, 64), (1, 3, 16), (0, 16, 128), (2, 7, 1)]:
        w = np.zeros(fan_out * fan_in, np.float32)
        lib.mt_init_uniform(seed, layer, fan_out, fan_in, w.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        assert w.tobytes() == prng.init_uniform(seed, layer, fan_out, fan_in).ravel().tobytes()
    for epoch, n in [(1, 1), (2, 2), (3, 90), (20, 271), (5, 1000)]:
        order = (ctypes.c_uint16 * n)()
        lib.mt_shuffle(seed, epoch, n, order)
        assert list(order) == prng.shuffle(seed, epoch, n).tolist()


def test_fnv1a_matches_python(lib):
    from firmware.codegen import fnv1a32

    data = np.random.default_rng(0).integers(-128, 128, 1000, dtype=np.int8)
    assert lib.mt_fnv1a(2166136261, data.ctypes.data, data.size) == fnv1a32(data.tobytes())
    assert fnv1a32(b"") == 0x811C9DC5 and fnv1a32(b"a") == 0xE40C292C  # published FNV-1a 32 test vectors


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in float32 units in the last place (finite, same sign)."""
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


def test_own_expf_logf_within_one_ulp(lib):
    """mt_expf / mt_logf (the trainer's, identical on every target) are within 1 ulp of the exact values."""
    f = ctypes.c_float
    lib.mt_expf.argtypes, lib.mt_expf.restype = [f], f
    lib.mt_logf.argtypes, lib.mt_logf.restype = [f], f
    rng = np.random.default_rng(0)
    xs = np.concatenate([rng.uniform(-87, 0, 3000), rng.uniform(-1, 1, 1000), rng.uniform(-1e-3, 1e-3, 200),
                         [0.0, -0.0, 1e-9, -0.34657359, 0.34657359, -1.0397208, 88.0]]).astype(np.float32)
    ours = np.array([lib.mt_expf(float(x)) for x in xs], np.float32)
    exact = np.exp(xs.astype(np.float64)).astype(np.float32)
    assert _ulps(ours, exact).max() <= 1
    assert lib.mt_expf(-200.0) == 0.0 and lib.mt_expf(100.0) == float("inf")
    assert np.isnan(lib.mt_expf(float("nan")))
    ys = np.concatenate([rng.uniform(1, 10, 3000), rng.uniform(1e-6, 1, 1000), 10 ** rng.uniform(-30, 30, 500),
                         [1.0, 2.0, 0.5, 3.0, 1e-40]]).astype(np.float32)
    ours = np.array([lib.mt_logf(float(y)) for y in ys], np.float32)
    exact = np.log(ys.astype(np.float64)).astype(np.float32)
    assert _ulps(ours, exact).max() <= 1
    assert lib.mt_logf(0.0) == float("-inf") and np.isnan(lib.mt_logf(-1.0))
