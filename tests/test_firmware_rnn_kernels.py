"""The recurrent C kernels (firmware/c/nn_rnn_q7.c) against models/intref_rnn.py, bit for bit: on the host through
ctypes (the activation functions on every input, LSTM/GRU on random shapes, widths and shifts, with saturation),
and one shape per kernel compiled for the Cortex-M4F and run on qemu-an386."""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from firmware.build import C_DIR
from models import intref_rnn as R

P8 = ctypes.POINTER(ctypes.c_int8)
P16 = ctypes.POINTER(ctypes.c_int16)
U8, U16, I16 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_int16
VP = ctypes.c_void_p


class RnnParams(ctypes.Structure):  # nn_rnn_params (nn_rnn_q7.h)
    _fields_ = [("steps", U16), ("in_dim", U16), ("units", U16), ("in_bits", U8), ("out_bits", U8),
                ("shift_x", I16), ("shift_h", I16), ("f_out", U16)]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("cc") is None:
        pytest.fail("no host C compiler (cc)")
    so = tmp_path_factory.mktemp("rnn") / "librnn.so"
    subprocess.run(["cc", "-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                    f"-I{C_DIR}", str(C_DIR / "nn_rnn_q7.c"), "-o", str(so)], check=True)
    lib = ctypes.CDLL(str(so))
    lib.nn_sigmoid_q15.argtypes, lib.nn_sigmoid_q15.restype = [I16], ctypes.c_int32
    lib.nn_tanh_q15.argtypes, lib.nn_tanh_q15.restype = [I16], ctypes.c_int32
    params = ctypes.POINTER(RnnParams)
    lib.nn_lstm_q7.argtypes = [params, VP, P8, P8, P16, P16, VP]
    lib.nn_gru_q7.argtypes = [params, VP, P8, P8, P16, VP]
    return lib


def test_activations_all_inputs(lib):
    """Both functions on all 65536 q3.12 inputs; and the table method's error against the exact functions."""
    x = np.arange(-32768, 32768, dtype=np.int64)
    c_sig = np.array([lib.nn_sigmoid_q15(int(v)) for v in x], np.int64)
    c_tanh = np.array([lib.nn_tanh_q15(int(v)) for v in x], np.int64)
    np.testing.assert_array_equal(c_sig, R.sigmoid_q15(x))
    np.testing.assert_array_equal(c_tanh, R.tanh_q15(x))
    real = x / 4096.0
    assert np.abs(c_sig / 32768.0 - 1 / (1 + np.exp(-real))).max() < 2.5 / 32768  # <= 2 LSB of q0.15
    assert np.abs(c_tanh / 32768.0 - np.tanh(real)).max() < 4.5 / 32768  # <= 4 LSB (step 1/32, tanh'' <= 0.77)
    assert c_sig.min() >= 0 and c_sig.max() <= 32768 and np.abs(c_tanh).max() <= 32767
    assert np.all(np.diff(c_sig) >= 0) and np.all(np.diff(c_tanh) >= 0)  # monotone: no interpolation kinks


def _ptr(a, typ):
    assert a.flags.c_contiguous
    return a.ctypes.data_as(typ)


def _case(rng, kind, extremes):
    gates = 4 if kind == "lstm" else 3
    steps, in_dim, units = int(rng.integers(1, 12)), int(rng.integers(1, 20)), int(rng.integers(1, 24))
    in_bits, out_bits = int(rng.choice([8, 16])), int(rng.choice([8, 16]))
    lim = 1 << (in_bits - 1)
    if extremes:  # many extreme values: saturated gates, saturated outputs, sign edges
        x = rng.choice(np.array([-lim, -lim + 1, -1, 0, 1, lim - 2, lim - 1]), size=(1, steps, in_dim))
        w_ih = rng.choice(np.array([-128, -127, -1, 0, 1, 127], np.int8), size=(gates * units, in_dim))
        w_hh = rng.choice(np.array([-128, -127, -1, 0, 1, 127], np.int8), size=(gates * units, units))
        b = rng.choice(np.array([-32768, -4096, 0, 4096, 32767]), size=(gates * units * (2 if kind == "gru" else 1),))
    else:
        x = rng.integers(-lim, lim, size=(1, steps, in_dim))
        w_ih = rng.integers(-128, 128, size=(gates * units, in_dim), dtype=np.int8)
        w_hh = rng.integers(-128, 128, size=(gates * units, units), dtype=np.int8)
        b = rng.integers(-12000, 12000, size=(gates * units * (2 if kind == "gru" else 1),))
    x = x.astype(np.int8 if in_bits == 8 else np.int16)
    b = b.astype(np.int16)
    f_out = int(rng.integers(0, 16))
    if extremes:  # q0.15 / q0.7-or-finer outputs: the rails are reachable
        f_out = 15 if out_bits == 16 else int(rng.integers(7, 16))
    shift_x = int(rng.integers(-3, 12)) + (8 if in_bits == 16 else 0)
    shift_h = int(rng.integers(-3, 12)) + (8 if out_bits == 16 else 0)
    return x, w_ih, w_hh, b, shift_x, shift_h, f_out, out_bits


def _run_c(lib, kind, x, w_ih, w_hh, b, shift_x, shift_h, f_out, out_bits):
    steps, in_dim = x.shape[1:]
    units = w_hh.shape[1]
    out = np.full((steps, units), 99, np.int8 if out_bits == 8 else np.int16)
    xi = np.ascontiguousarray(x[0])
    params = RnnParams(steps, in_dim, units, x.dtype.itemsize * 8, out_bits, shift_x, shift_h, f_out)
    args = (ctypes.byref(params), xi.ctypes.data, _ptr(w_ih, P8), _ptr(w_hh, P8), _ptr(b, P16))
    if kind == "lstm":
        cell = np.full(units, 1234, np.int16)  # garbage: the kernel must zero it
        lib.nn_lstm_q7(*args, _ptr(cell, P16), out.ctypes.data)
    else:
        lib.nn_gru_q7(*args, out.ctypes.data)
    return out


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("seed", range(40))
def test_rnn_bit_exact(lib, kind, seed):
    rng = np.random.default_rng(1000 * (kind == "gru") + seed)
    x, w_ih, w_hh, b, sx, sh, f_out, out_bits = _case(rng, kind, extremes=seed % 3 == 0)
    fn = R.lstm_q7 if kind == "lstm" else R.gru_q7
    try:
        ref = fn(x, w_ih, w_hh, b, sx, sh, f_out, out_bits)[0]
    except OverflowError:
        pytest.skip("int32 overflow (the reference refuses it)")
    out = _run_c(lib, kind, x, w_ih, w_hh, b, sx, sh, f_out, out_bits)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_rnn_cases_cover_saturation(kind):
    """The random cases above reach both int8 rails (saturation) and most of the int16 range, else they test
    little (test_rnn_rails_bit_exact drives int16 to its ends)."""
    seen, ran = set(), 0
    for seed in range(40):
        rng = np.random.default_rng(1000 * (kind == "gru") + seed)
        x, w_ih, w_hh, b, sx, sh, f_out, out_bits = _case(rng, kind, extremes=seed % 3 == 0)
        try:
            ref = (R.lstm_q7 if kind == "lstm" else R.gru_q7)(x, w_ih, w_hh, b, sx, sh, f_out, out_bits)
        except OverflowError:
            continue
        ran += 1
        lim = 1 << (out_bits - 1)
        near = 1 if out_bits == 8 else 4000
        seen |= {("lo", out_bits)} if ref.min() < -lim + near else set()
        seen |= {("hi", out_bits)} if ref.max() > lim - 1 - near else set()
    assert ran >= 35
    assert {("lo", 8), ("hi", 8), ("lo", 16), ("hi", 16)} <= seen


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("out_bits", [8, 16])
def test_rnn_rails_bit_exact(lib, kind, out_bits):
    """Gates driven into saturation by +-8 biases: outputs reach the ends of the range (int16 q0.15 cannot
    saturate: |h| <= 2^15 by construction, and LSTM caps at sigmoid(8) tanh(8) = 32756 / 2^15)."""
    gates, units, steps, in_dim = (4 if kind == "lstm" else 3), 6, 24, 3
    sign = np.array([1, -1, 1, -1, 1, -1])
    b = np.full((gates, units), 32767, np.int64)
    b[2] = 32767 * sign  # LSTM g / GRU n: +-8
    if kind == "gru":
        b[1] = -32767  # z ~ 0: h follows n
        b = np.concatenate([b.ravel(), np.zeros(gates * units, np.int64)])
    b = b.ravel().astype(np.int16)
    x = np.zeros((1, steps, in_dim), np.int8)
    w_ih = np.zeros((gates * units, in_dim), np.int8)
    w_hh = np.ones((gates * units, units), np.int8)
    f_out = 15 if out_bits == 16 else 9
    ref = (R.lstm_q7 if kind == "lstm" else R.gru_q7)(x, w_ih, w_hh, b, 4, 3, f_out, out_bits)[0]
    np.testing.assert_array_equal(_run_c(lib, kind, x, w_ih, w_hh, b, 4, 3, f_out, out_bits), ref)
    top = 127 if out_bits == 8 else (32756 if kind == "lstm" else 32767)
    assert ref[-1].max() == top and ref[-1].min() == -top - (out_bits == 8)


def test_rnn_bit_identical_on_qemu(tmp_path):
    """One LSTM (int8 -> int8, har_rnn's lstm1 shape) and one GRU (int16 -> int16, gru2's shape, shortened) on the
    Cortex-M4F under qemu-an386, plus the activation functions on a sweep of inputs, against the reference."""
    from firmware.boards.qemu import run_elf
    from qemu_fw_util import c_array, compile_m4, require_tools

    require_tools()
    rng = np.random.default_rng(77)
    lstm = (rng.integers(-128, 128, (1, 12, 9)).astype(np.int8), rng.integers(-128, 128, (128, 9), dtype=np.int8),
            rng.integers(-128, 128, (128, 32), dtype=np.int8), rng.integers(-9000, 9000, 128).astype(np.int16),
            2, 4, 7, 8)
    gru = (rng.integers(-32768, 32768, (1, 6, 64)).astype(np.int16), rng.integers(-128, 128, (96, 64), dtype=np.int8),
           rng.integers(-128, 128, (96, 32), dtype=np.int8), rng.integers(-9000, 9000, 192).astype(np.int16),
           13, 12, 15, 16)
    want = {"lstm": R.lstm_q7(*lstm)[0], "gru": R.gru_q7(*gru)[0]}
    sweep = np.arange(-32768, 32768, 97, dtype=np.int64)
    want["act"] = np.stack([R.sigmoid_q15(sweep), R.tanh_q15(sweep)], axis=1).astype(np.int32)
    src = ['#include <stdint.h>\n#include <string.h>\n#include "platform.h"\n#include "nn_rnn_q7.h"\n',
           "static void put(const char *s) { plat_write(s, strlen(s)); }\n"
           "static void emit(const char *name, const void *p, uint32_t n)\n{\n"
           "    static const char hexd[] = \"0123456789abcdef\";\n    const uint8_t *v = p;\n    char b[2];\n"
           "    put(\"{\\\"event\\\":\\\"out\\\",\\\"name\\\":\\\"\");\n    put(name);\n"
           "    put(\"\\\",\\\"hex\\\":\\\"\");\n"
           "    for (uint32_t i = 0; i < n; i++) { b[0] = hexd[v[i] >> 4]; b[1] = hexd[v[i] & 15]; plat_write(b, 2); }\n"
           "    put(\"\\\"}\\n\");\n}\n"]
    for name, (x, w_ih, w_hh, b, *_rest) in (("lstm", lstm), ("gru", gru)):
        ctype = "int8_t" if x.dtype == np.int8 else "int16_t"
        src += [c_array(f"{name}_x", x.ravel(), ctype), c_array(f"{name}_wi", w_ih.ravel()),
                c_array(f"{name}_wh", w_hh.ravel()), c_array(f"{name}_b", b, "q15_t"),
                f"static {'int8_t' if want[name].dtype == np.int8 else 'int16_t'} {name}_out[{want[name].size}];\n"]
    src += [c_array("sweep", sweep, "int16_t"), f"static int32_t act_out[{2 * len(sweep)}];\n",
            "static q15_t cell[32];\nint main(void)\n{\n    uint32_t i;\n    plat_init();\n",
            "    static const nn_rnn_params lstm_p = {12, 9, 32, 8, 8, 2, 4, 7};\n",
            "    static const nn_rnn_params gru_p = {6, 64, 32, 16, 16, 13, 12, 15};\n",
            "    nn_lstm_q7(&lstm_p, lstm_x, lstm_wi, lstm_wh, lstm_b, cell, lstm_out);\n",
            "    nn_gru_q7(&gru_p, gru_x, gru_wi, gru_wh, gru_b, gru_out);\n",
            f"    for (i = 0; i < {len(sweep)}u; i++) {{ act_out[2 * i] = nn_sigmoid_q15(sweep[i]); "
            "act_out[2 * i + 1] = nn_tanh_q15(sweep[i]); }\n",
            "    emit(\"lstm\", lstm_out, sizeof lstm_out);\n    emit(\"gru\", gru_out, sizeof gru_out);\n",
            "    emit(\"act\", act_out, sizeof act_out);\n    return 0;\n}\n"]
    (tmp_path / "rnn.c").write_text("".join(src))
    elf = compile_m4([tmp_path / "rnn.c", C_DIR / "nn_rnn_q7.c"], tmp_path / "rnn.elf")
    run = run_elf(elf, timeout=60, count=False)
    assert run.exit_status == 0, run.output
    got = {e["name"]: e["hex"] for e in run.events() if e.get("event") == "out"}
    for name, ref in want.items():
        assert got.get(name) == ref.astype(ref.dtype.newbyteorder("<")).tobytes().hex(), name
    assert len(np.unique(want["lstm"])) > 50 and np.abs(want["gru"]).max() > 10000
