"""The int8 kernels (firmware/c/nn_q7.c, and the DSP kernels nn_q7_m4.c) compiled for the Cortex-M4F and run on qemu-an386 give outputs
bit-identical to the integer reference (models/intref.py), for at least one shape per kernel: the cross-compiler's
code generation (arithmetic shifts, saturation, wrap-around) is checked on the target ISA, not only on the host."""
from __future__ import annotations

import numpy as np
import pytest

from firmware.boards.qemu import run_elf
from models import intref

from qemu_fw_util import C_DIR, c_array, compile_m4, require_tools

RNG_SEED = 20240607
SCRATCH_Q15 = 2048


def _i8(rng, *shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)


def _cases():
    """(name, C statements, expected int8 output) per kernel and shape; the statements read the arrays named
    <name>_in, <name>_w, <name>_b and write <name>_out."""
    rng = np.random.default_rng(RNG_SEED)
    cases = []

    # conv2d: (h, w, cin, cout, k, padding, stride, bias_shift, out_shift)
    for i, (h, w, cin, cout, k, pad, stride, bs, os_) in enumerate([(7, 6, 3, 4, 3, 1, 2, 3, 9),
                                                                    (5, 5, 2, 3, 2, 0, 1, 0, 7),
                                                                    (4, 9, 1, 2, 3, 2, 1, 6, 8)]):
        x, wt, b = _i8(rng, h, w, cin), _i8(rng, cout, k, k, cin), _i8(rng, cout)
        ref = intref.conv2d_q7(x[None], wt, b, bs, os_, stride, pad)[0]
        oh, ow = ref.shape[:2]
        name = f"conv2d_{i}"
        params = (f"&(const nn_conv_params){{{{{h}, {w}, {cin}}}, {{{oh}, {ow}, {cout}}}, {k}, {pad}, {stride}, "
                  f"{bs}, {os_}}}")
        call = f"nn_conv2d_q7({params}, {name}_in, {name}_w, {name}_b, {name}_out, scratch);"
        cases.append((name, {"in": x, "w": wt, "b": b}, call, ref))
        # the same convolution's rows [1, oh) only (a fused conv -> pool's band; top row of padding skipped)
        name = f"conv2d_rows_{i}"
        call = f"nn_conv2d_rows_q7({params}, {name}_in, {name}_w, {name}_b, {name}_out, 1, {oh}, scratch);"
        cases.append((name, {"in": x, "w": wt, "b": b}, call, ref[1:]))

    # conv1d: (length, cin, cout, k, padding, stride, bias_shift, out_shift)
    for i, (n, cin, cout, k, pad, stride, bs, os_) in enumerate([(20, 3, 5, 5, 2, 1, 2, 8),
                                                                 (17, 6, 4, 3, 0, 2, 0, 9)]):
        x, wt, b = _i8(rng, n, cin), _i8(rng, cout, k, cin), _i8(rng, cout)
        ref = intref.conv1d_q7(x[None], wt, b, bs, os_, stride, pad)[0]
        name = f"conv1d_{i}"
        params = (f"&(const nn_conv_params){{{{1, {n}, {cin}}}, {{1, {ref.shape[0]}, {cout}}}, {k}, {pad}, {stride}, "
                  f"{bs}, {os_}}}")
        call = f"nn_conv1d_q7({params}, {name}_in, {name}_w, {name}_b, {name}_out, scratch);"
        cases.append((name, {"in": x, "w": wt, "b": b}, call, ref))

    # maxpool2d: (h, w, ch, k, stride)
    for i, (h, w, ch, k, stride) in enumerate([(8, 6, 3, 2, 2), (7, 9, 2, 3, 2)]):
        x = _i8(rng, h, w, ch)
        ref = intref.maxpool2d_q7(x[None], k, stride)[0]
        name = f"maxpool2d_{i}"
        call = (f"nn_maxpool2d_q7(&(const nn_pool_params){{{{{h}, {w}, {ch}}}, {{{ref.shape[0]}, {ref.shape[1]}, "
                f"{ch}}}, {k}, {stride}}}, {name}_in, {name}_out);")
        cases.append((name, {"in": x}, call, ref))

    # relu (in place on a copy)
    x = _i8(rng, 61)
    ref = intref.relu_q7(x)
    call = "memcpy(relu_0_out, relu_0_in, sizeof relu_0_in); nn_relu_q7(relu_0_out, 61);"
    cases.append(("relu_0", {"in": x}, call, ref))

    # fc: (dim_vec, rows, bias_shift, out_shift)
    for i, (dim, rows, bs, os_) in enumerate([(40, 10, 4, 9), (7, 3, 0, 1), (256, 12, 7, 11)]):
        x, wt, b = _i8(rng, dim), _i8(rng, rows, dim), _i8(rng, rows)
        ref = intref.fc_q7(x[None], wt, b, bs, os_)[0]
        name = f"fc_{i}"
        call = (f"nn_fc_q7(&(const nn_fc_params){{{dim}, {rows}, {bs}, {os_}}}, {name}_in, {name}_w, {name}_b, "
                f"{name}_out, scratch);")
        cases.append((name, {"in": x, "w": wt, "b": b}, call, ref))
    return cases


def _program(cases) -> str:
    parts = ['#include <stdint.h>\n#include <string.h>\n#include "platform.h"\n#include "nn_q7.h"\n\n',
             f"static q15_t scratch[{SCRATCH_Q15}];  /* > every case's kernels.scratch_bytes (fc 256: 512 B) */\n",
             "static void put(const char *s) { plat_write(s, strlen(s)); }\n\n"
             "static void emit(const char *name, const q7_t *v, uint32_t n)\n{\n"
             "    static const char hexd[] = \"0123456789abcdef\";\n"
             "    char buf[16];\n"
             "    put(\"{\\\"event\\\":\\\"out\\\",\\\"name\\\":\\\"\");\n"
             "    put(name);\n"
             "    put(\"\\\",\\\"hex\\\":\\\"\");\n"
             "    for (uint32_t i = 0; i < n; i++) {\n"
             "        buf[0] = hexd[((uint8_t)v[i]) >> 4]; buf[1] = hexd[((uint8_t)v[i]) & 15];\n"
             "        plat_write(buf, 2);\n"
             "    }\n"
             "    put(\"\\\"}\\n\");\n}\n\n"]
    for name, arrays, _, ref in cases:
        for key, arr in arrays.items():
            parts.append(c_array(f"{name}_{key}", arr.ravel()))
        parts.append(f"static q7_t {name}_out[{ref.size}];\n")
    parts.append("\nint main(void)\n{\n    plat_init();\n")
    for name, _, call, ref in cases:
        parts.append(f"    {call}\n    emit(\"{name}\", {name}_out, {ref.size});\n")
    parts.append("    return 0;\n}\n")
    return "".join(parts)


@pytest.mark.parametrize("kernels", ["nn_q7.c", "nn_q7_m4.c"])  # portable, DSP
def test_kernels_bit_identical_on_qemu(tmp_path, kernels):
    require_tools()
    if not (C_DIR / kernels).is_file():
        pytest.fail(f"firmware/c/{kernels} is missing (the firmware core's kernels)")
    cases = _cases()
    src = tmp_path / "kernels.c"
    src.write_text(_program(cases))
    elf = compile_m4([src, C_DIR / kernels], tmp_path / "kernels.elf")
    run = run_elf(elf, timeout=60, count=False)
    assert run.exit_status == 0, run.output
    got = {e["name"]: e["hex"] for e in run.events() if e.get("event") == "out"}
    assert set(got) == {name for name, *_ in cases}
    for name, _, _, ref in cases:
        want = ref.astype(np.int8).view(np.uint8).tobytes().hex()
        assert got[name] == want, f"{name}: target output differs from models/intref.py"
    # the data exercise both the in-range path and the saturation on both sides
    values = np.concatenate([ref.ravel() for *_, ref in cases]).astype(int)
    assert {-128, 127} <= set(values.tolist()) and len(set(values.tolist())) > 100
