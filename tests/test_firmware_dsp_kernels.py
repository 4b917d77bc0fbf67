"""The Cortex-M4 DSP kernels (firmware/c/nn_q7_m4.c, the SMLAD products of nn_rnn_q7.c) on qemu-an386, bit for bit
against the integer reference on random shapes with the awkward ones: channel counts not a multiple of 2 or 4, odd
widths, padding, stride > 1, 1x1 kernels, kernels larger than the input with padding, row-band calls with oy0 > 0,
every shift 1..31, saturation, 32-bit wrap-around; plus the fallbacks (NULL scratch, maxpool channels % 4 != 0), an
exact-size scratch with a guard (models/kernels.py scratch_bytes is what the kernels use) and misaligned
buffers. All cases run in two ELFs (QEMU start-up is the cost)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from models.kernels import fast_path, scratch_bytes
from firmware.boards.qemu import run_elf
from models import intref
from models import intref_rnn as R

from qemu_fw_util import C_DIR, c_array, compile_m4, require_tools

GUARD = 0x5A
EMIT = ("static void put(const char *s) { plat_write(s, strlen(s)); }\n"
        "static void emit(const char *name, const void *p, uint32_t n)\n{\n"
        "    static const char hexd[] = \"0123456789abcdef\";\n    const uint8_t *v = p;\n    char b[2];\n"
        "    put(\"{\\\"event\\\":\\\"out\\\",\\\"name\\\":\\\"\");\n    put(name);\n"
        "    put(\"\\\",\\\"hex\\\":\\\"\");\n"
        "    for (uint32_t i = 0; i < n; i++) { b[0] = hexd[v[i] >> 4]; b[1] = hexd[v[i] & 15]; plat_write(b, 2); }\n"
        "    put(\"\\\"}\\n\");\n}\n")


def _wrap_conv(x, w, b, bs, os_, stride, pad):
    """conv2d_q7 with the device's 32-bit wrap-around (intref refuses overflowing cases): x (H, W, C)."""
    x = np.pad(x.astype(np.int64), ((pad, pad), (pad, pad), (0, 0)))
    out_ch, kh, kw, cin = w.shape
    win = sliding_window_view(x, (kh, kw), axis=(0, 1))[::stride, ::stride]  # (OH, OW, C, KH, KW)
    oh, ow = win.shape[:2]
    cols = win.transpose(0, 1, 3, 4, 2).reshape(oh * ow, -1)
    acc = cols @ w.reshape(out_ch, -1).astype(np.int64).T + (b.astype(np.int64) << bs) + (1 << (os_ - 1))
    acc = (acc + 2**31) % 2**32 - 2**31
    return np.clip(acc >> os_, -128, 127).astype(np.int8).reshape(oh, ow, out_ch)


def _ref_conv(x, w, b, bs, os_, stride, pad):
    got = _wrap_conv(x, w, b, bs, os_, stride, pad)
    try:  # the wrap-around reference agrees with intref wherever intref answers
        np.testing.assert_array_equal(got, intref.conv2d_q7(x[None], w, b, bs, os_, stride, pad)[0])
    except OverflowError:
        pass
    return got


def _i8(rng, shape, extremes=False):
    if extremes:
        return rng.choice(np.array([-128, -127, -1, 0, 1, 126, 127], np.int8), size=shape)
    return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)


def _shifts(rng, k_terms):
    os_ = int(rng.integers(1, 32))
    bs = int(rng.integers(0, 32)) if rng.random() < 0.3 else int(rng.integers(0, 10))
    if rng.random() < 0.5:  # outputs mostly in range, some saturated
        os_ = int(np.clip(np.log2(max(k_terms, 1)) + 8 + rng.integers(-3, 3), 1, 31))
    return bs, os_


class _Program:
    """Cases of one ELF: arrays, calls, expected bytes; scratch buffers of exactly the needed size + a guard."""

    def __init__(self):
        self.decl, self.calls, self.want, self.guards = [], [], {}, []

    def array(self, name, a, ctype="q7_t"):
        self.decl.append(c_array(name, a.ravel(), ctype))
        return name

    def scratch(self, name, nbytes, offset):
        """q15_t * to nbytes of scratch at byte `offset` (0 or 2) from a word boundary, followed by 8 guard bytes."""
        total = offset + nbytes + 8
        self.decl.append(f"static union {{ uint32_t a; uint8_t b[{total}]; }} {name}_s;\n")
        self.calls.append(f"memset({name}_s.b, {GUARD}, {total});")
        self.guards.append((name, offset + nbytes))
        return f"(q15_t *)({name}_s.b + {offset})"

    def expect(self, name, ref, call, out_type="q7_t", out_offset=0):
        size = ref.nbytes
        self.decl.append(f"static union {{ uint32_t a; uint8_t b[{size + out_offset}]; }} {name}_o;\n")
        self.calls.append(call.replace("OUT", f"(({out_type} *)({name}_o.b + {out_offset}))"))
        self.calls.append(f"emit(\"{name}\", {name}_o.b + {out_offset}, {size});")
        self.want[name] = ref.astype(ref.dtype.newbyteorder("<")).tobytes().hex()

    def source(self, header):
        guards = "".join(f"emit(\"guard_{n}\", {n}_s.b + {off}, 8);\n    " for n, off in self.guards)
        return ("#include <stdint.h>\n#include <string.h>\n#include \"platform.h\"\n"
                f"#include \"{header}\"\n" + EMIT + "".join(self.decl) + "\nint main(void)\n{\n    plat_init();\n    "
                + "\n    ".join(self.calls) + "\n    " + guards + "return 0;\n}\n")

    def check(self, run):
        assert run.exit_status == 0, run.output[-2000:]
        got = {e["name"]: e["hex"] for e in run.events() if e.get("event") == "out"}
        for name, want in self.want.items():
            assert got.get(name) == want, f"{name}: DSP kernel output differs from the reference"
        for name, _ in self.guards:
            assert got.get(f"guard_{name}") == f"{GUARD:02x}" * 8, f"{name}: kernel wrote past its scratch_bytes"


def _conv2d_cases(p: _Program, rng):
    shapes = [  # (h, w, cin, cout, k, pad, stride)
        (32, 32, 3, 8, 3, 0, 1),   # cifar conv1's channels
        (7, 9, 1, 5, 3, 1, 2), (6, 5, 2, 3, 1, 0, 1), (5, 7, 4, 4, 3, 1, 1), (9, 4, 5, 7, 2, 0, 2),
        (4, 6, 8, 6, 5, 2, 1),     # k > width with padding
        (3, 3, 6, 2, 5, 3, 3),     # k > input, stride 3
        (8, 8, 12, 9, 1, 0, 2),    # 1x1, stride 2, odd out channels
        (6, 6, 32, 16, 3, 0, 1),   # cifar conv3
        (1, 11, 7, 3, 3, 1, 1), (5, 5, 16, 1, 3, 0, 1),
    ] + [(int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16])),
          int(rng.integers(1, 10)), int(rng.integers(1, 6)), 0, int(rng.integers(1, 4))) for _ in range(10)]
    for i, (h, w, cin, cout, k, pad, stride) in enumerate(shapes):
        if i >= 11:
            pad = int(rng.integers(0, k))
            h, w = max(h, k - 2 * pad), max(w, k - 2 * pad)
        ext = i % 3 == 1
        x, wt, b = _i8(rng, (h, w, cin), ext), _i8(rng, (cout, k, k, cin), ext), _i8(rng, (cout,), ext)
        bs, os_ = _shifts(rng, k * k * cin)
        if i == 4:
            bs, os_ = 26, 31  # the bias term alone wraps in 32 bits
        ref = _ref_conv(x, wt, b, bs, os_, stride, pad)
        oh, ow = ref.shape[:2]
        layer = SimpleNamespace(kind="conv2d", in_shape=(h, w, cin), out_shape=ref.shape, kernel=k, stride=stride,
                                padding=pad)
        assert fast_path(layer, "cortex-m4") and not fast_path(layer, "portable")
        name = f"conv2d_{i}"
        args = (f"&(const nn_conv_params){{{{{h}, {w}, {cin}}}, {{{oh}, {ow}, {cout}}}, {k}, {pad}, {stride}, {bs}, "
                f"{os_}}}, {p.array(name + '_x', x)}, {p.array(name + '_w', wt)}, {p.array(name + '_b', b)}")
        scratch = p.scratch(name, scratch_bytes(layer), 2 * (i % 2))
        p.expect(name, ref, f"nn_conv2d_q7({args}, OUT, {scratch});", out_offset=i % 4)
        if oh >= 2:  # a band of rows, starting past row 0, like the fused conv -> pool
            oy0 = int(rng.integers(1, oh))
            oy1 = int(rng.integers(oy0 + 1, min(oh, oy0 + 3) + 1))
            p.expect(name + "_rows", ref[oy0:oy1],
                     f"nn_conv2d_rows_q7({args}, OUT, {oy0}, {oy1}, {scratch});", out_offset=1)
        if i % 5 == 0:  # NULL scratch: the portable fallback inside the same function
            p.expect(name + "_null", ref, f"nn_conv2d_q7({args}, OUT, 0);")


def _conv1d_cases(p: _Program, rng):
    shapes = [(128, 9, 9, 3, 1, 3), (20, 3, 5, 5, 2, 1), (17, 6, 4, 3, 0, 2), (9, 8, 7, 1, 0, 1), (5, 4, 3, 7, 3, 2)]
    shapes += [(int(rng.integers(6, 30)), int(rng.integers(1, 13)), int(rng.integers(1, 9)), int(rng.integers(1, 6)),
                0, int(rng.integers(1, 4))) for _ in range(5)]
    for i, (n, cin, cout, k, pad, stride) in enumerate(shapes):
        if i >= 5:
            pad = int(rng.integers(0, k))
        x, wt, b = _i8(rng, (n, cin), i % 2 == 0), _i8(rng, (cout, k, cin), i % 2 == 0), _i8(rng, (cout,))
        bs, os_ = _shifts(rng, k * cin)
        xp = np.pad(x, ((pad, pad), (0, 0)))
        ref = _wrap_conv(xp[None], wt[:, None], b, bs, os_, 1, 0)[0, ::stride]
        try:
            np.testing.assert_array_equal(ref, intref.conv1d_q7(x[None], wt, b, bs, os_, stride, pad)[0])
        except OverflowError:
            pass
        layer = SimpleNamespace(kind="conv1d", in_shape=(n, cin), out_shape=ref.shape, kernel=k, stride=stride,
                                padding=pad)
        name = f"conv1d_{i}"
        args = (f"&(const nn_conv_params){{{{1, {n}, {cin}}}, {{1, {ref.shape[0]}, {cout}}}, {k}, {pad}, {stride}, "
                f"{bs}, {os_}}}, {p.array(name + '_x', x)}, {p.array(name + '_w', wt)}, {p.array(name + '_b', b)}")
        p.expect(name, ref, f"nn_conv1d_q7({args}, OUT, {p.scratch(name, scratch_bytes(layer), 2 * (i % 2))});")
        if i == 1:
            p.expect(name + "_null", ref, f"nn_conv1d_q7({args}, OUT, 0);")


def _fc_cases(p: _Program, rng):
    shapes = [(1, 1), (2, 3), (3, 5), (7, 2), (40, 10), (63, 9), (256, 12), (301, 7), (576, 4)]
    for i, (dim, rows) in enumerate(shapes):
        x, wt, b = _i8(rng, (dim,), i % 2 == 0), _i8(rng, (rows, dim), i % 2 == 0), _i8(rng, (rows,))
        bs, os_ = _shifts(rng, dim)
        ref = _wrap_conv(x[None, None], wt[:, None, None], b, bs, os_, 1, 0)[0, 0]
        layer = SimpleNamespace(kind="fc", in_shape=(dim,), out_shape=(rows,), kernel=0, stride=1, padding=0)
        name = f"fc_{i}"
        args = (f"&(const nn_fc_params){{{dim}, {rows}, {bs}, {os_}}}, {p.array(name + '_x', x)}, "
                f"{p.array(name + '_w', wt)}, {p.array(name + '_b', b)}")
        p.expect(name, ref, f"nn_fc_q7({args}, OUT, {p.scratch(name, scratch_bytes(layer), 2 * (i % 2))});")
        if i == 4:
            p.expect(name + "_null", ref, f"nn_fc_q7({args}, OUT, 0);")
    # wrap-around inside the multiply-accumulates: (127 << 24) + 1100 * 16384 passes 2^31 - 1
    dim = 1100
    x, wt, b = np.full(dim, -128, np.int8), np.full((2, dim), -128, np.int8), np.array([127, -128], np.int8)
    ref = _wrap_conv(x[None, None], wt[:, None, None], b, 24, 20, 1, 0)[0, 0]
    assert ref[0] < 0  # wrapped to negative
    layer = SimpleNamespace(kind="fc", in_shape=(dim,), out_shape=(2,), kernel=0, stride=1, padding=0)
    p.expect("fc_wrap", ref, f"nn_fc_q7(&(const nn_fc_params){{{dim}, 2, 24, 20}}, {p.array('fcw_x', x)}, "
                             f"{p.array('fcw_w', wt)}, {p.array('fcw_b', b)}, OUT, "
                             f"{p.scratch('fc_wrap', scratch_bytes(layer), 0)});")


def _pool_relu_cases(p: _Program, rng):
    for i, (h, w, ch, k, stride) in enumerate([(30, 30, 64, 2, 2), (13, 13, 32, 2, 2), (7, 9, 4, 3, 2),
                                               (5, 5, 8, 1, 1), (6, 7, 12, 3, 1), (8, 6, 3, 2, 2), (7, 5, 5, 3, 2)]):
        x = _i8(rng, (h, w, ch), i % 2 == 0)
        ref = intref.maxpool2d_q7(x[None], k, stride)[0]
        layer = SimpleNamespace(kind="maxpool2d", in_shape=(h, w, ch), out_shape=ref.shape, kernel=k, stride=stride,
                                padding=0)
        assert fast_path(layer, "cortex-m4") == (ch % 4 == 0)
        name = f"pool_{i}"
        p.expect(name, ref, f"nn_maxpool2d_q7(&(const nn_pool_params){{{{{h}, {w}, {ch}}}, {{{ref.shape[0]}, "
                            f"{ref.shape[1]}, {ch}}}, {k}, {stride}}}, {p.array(name + '_x', x)}, OUT);",
                 out_offset=i % 3)
    for i, n in enumerate([1, 3, 4, 5, 8, 61, 64, 203]):
        x = _i8(rng, (n,), True)
        name = f"relu_{i}"
        p.expect(name, intref.relu_q7(x), f"memcpy(OUT, {p.array(name + '_x', x)}, {n}); nn_relu_q7(OUT, {n});",
                 out_offset=i % 4)


def test_dsp_kernels_bit_identical_on_qemu(tmp_path):
    require_tools()
    rng = np.random.default_rng(20261206)
    p = _Program()
    _conv2d_cases(p, rng)
    _conv1d_cases(p, rng)
    _fc_cases(p, rng)
    _pool_relu_cases(p, rng)
    (tmp_path / "dsp.c").write_text(p.source("nn_q7.h"))
    elf = compile_m4([tmp_path / "dsp.c", C_DIR / "nn_q7_m4.c"], tmp_path / "dsp.elf")
    p.check(run_elf(elf, timeout=120, count=False))
    outs = np.concatenate([np.frombuffer(bytes.fromhex(h), np.int8) for h in p.want.values()]).astype(int)
    assert {-128, 127} <= set(outs.tolist()) and len(set(outs.tolist())) > 200  # saturation and spread exercised


def _rnn_case(rng, kind, in_bits, out_bits):
    gates = 4 if kind == "lstm" else 3
    steps, in_dim, units = int(rng.integers(2, 7)), int(rng.integers(1, 40)), int(rng.integers(1, 38))
    lim = 1 << (in_bits - 1)
    x = rng.integers(-lim, lim, size=(1, steps, in_dim)).astype(np.int8 if in_bits == 8 else np.int16)
    w_ih = rng.integers(-128, 128, size=(gates * units, in_dim), dtype=np.int8)
    w_hh = rng.integers(-128, 128, size=(gates * units, units), dtype=np.int8)
    b = rng.integers(-12000, 12000, size=(gates * units * (2 if kind == "gru" else 1),)).astype(np.int16)
    f_out = int(rng.integers(4, 16))
    shift_x = int(rng.integers(0, 10)) + (8 if in_bits == 16 else 0)
    shift_h = int(rng.integers(0, 10)) + (8 if out_bits == 16 else 0)
    return x, w_ih, w_hh, b, shift_x, shift_h, f_out, out_bits


def test_dsp_rnn_products_bit_identical_on_qemu(tmp_path):
    """LSTM and GRU with the SMLAD products, every int8/int16 input and output width, odd dimensions."""
    require_tools()
    rng = np.random.default_rng(6120)
    p = _Program()
    for i, (kind, in_bits, out_bits) in enumerate([(k, a, b) for k in ("lstm", "gru") for a in (8, 16)
                                                   for b in (8, 16)] * 2):
        x, w_ih, w_hh, b, sx, sh, f_out, _ = _rnn_case(rng, kind, in_bits, out_bits)
        ref = (R.lstm_q7 if kind == "lstm" else R.gru_q7)(x, w_ih, w_hh, b, sx, sh, f_out, out_bits)[0]
        steps, in_dim = x.shape[1:]
        units = w_hh.shape[1]
        name = f"{kind}_{i}"
        xt = "int8_t" if in_bits == 8 else "int16_t"
        ot = "int8_t" if out_bits == 8 else "int16_t"
        cell = ""
        if kind == "lstm":
            p.decl.append(f"static q15_t {name}_cell[{units}];\n")
            cell = f"{name}_cell, "
        p.expect(name, ref, f"nn_{kind}_q7(&(const nn_rnn_params){{{steps}, {in_dim}, {units}, {in_bits}, "
                            f"{out_bits}, {sx}, {sh}, {f_out}}}, {p.array(name + '_x', x, xt)}, "
                            f"{p.array(name + '_wi', w_ih)}, {p.array(name + '_wh', w_hh)}, "
                            f"{p.array(name + '_b', b, 'q15_t')}, {cell}OUT);",
                 out_type=ot, out_offset=0 if out_bits == 16 else i % 2)
    (tmp_path / "rnn.c").write_text(p.source("nn_rnn_q7.h"))
    elf = compile_m4([tmp_path / "rnn.c", C_DIR / "nn_rnn_q7.c"], tmp_path / "rnn.elf")
    p.check(run_elf(elf, timeout=120, count=False))
