"""Kernel micro-benchmark: every frozen layer kernel alone - the sequence kernels (nn_lstm_q7, nn_gru_q7 with int8 /
int16 sequences, nn_conv1d_q7 with zero padding) and the image kernels (nn_conv2d_q7 with strides and zero padding,
nn_maxpool2d_q7, nn_fc_q7, nn_relu_q7) - over a grid of shapes beyond the zoo's, each call's retired instructions
counted on qemu-an386.

Why: the zoo reaches one LSTM, five GRU and a handful of conv2d / pool / fc shapes, too few to tell the kernels'
count terms apart (MACs, dot calls, tail MACs, pixels, outputs, unit-steps, steps) from whole-firmware runs alone.
Here each call is bracketed by plat_phase_marker calls, so the insncount plugin's counter at the markers gives the
call's instructions exactly; the counts the whole-firmware cost model uses (cost_models.microtl_dse.rnn_counts and
microtl_dse.model's frozen counts) are fitted per kernel (NNLS: cost_models/microtl_dse/kernel_counts.py, on these runs as data)
and checked leaving one shape out.

One C program holds every call; weights, biases and inputs are shared pools filled by a fixed LCG (the loop counts
do not depend on them; the table lookups' and saturations' branches do, a little; the pooling maximum and the ReLU
compile to IT blocks, the same instructions whatever the data). The image kernels draw from their own q7 pools,
filled after the sequence kernels' so that those see the same data whatever image shapes are added. ReLU works in
place: each call rectifies its own scratch copy of the input pool, made before its first marker. Pure generation
and fitting here; `measure` builds with the firmware's flags and runs on qemu-an386.

kernels="fast" measures the Cortex-M4 DSP kernels (what qemu-an386 and nrf52840dk run) against
cost_models/microtl_dse/dsp_counts.py's counts (cost_models.microtl_dse.kernel_counts.call_counts(shape, "fast")); they have more counts than the portable loops
(pixel and channel pairs, groups of 4 and tails, staged patches), so `fast_grid` adds random shapes of every parity.
"""
from __future__ import annotations

import hashlib
import itertools
import random
import subprocess
from dataclasses import asdict, dataclass
from math import prod
from pathlib import Path

from models.kernels import scratch_bytes
from models.zoo import LayerSpec

from .boards.qemu import qemu_version, run_elf
from .build import ARM_CC, C_DIR, COMMON_FLAGS, M4_FLAGS, M4_LINK, M4_RUNTIME, kernel_sources, toolchain_version

KINDS = ("conv1d", "lstm", "gru", "conv2d", "maxpool2d", "fc", "relu")
SEQUENCE_KINDS = ("conv1d", "lstm", "gru")  # int8 / int16 sequence pools; the others use the q7 image pools


@dataclass(frozen=True)
class KernelShape:
    """One call. Sequence kernels: steps x in_dim -> units. Image kernels (use the constructors below): conv2d and
    maxpool2d take a steps (height) x width x in_dim (channels) image; fc in_dim (dim_vec) -> units (rows); relu
    in_dim elements."""

    kind: str  # one of KINDS
    steps: int  # sequence length (conv1d: input length; conv2d / maxpool2d: input height; fc / relu: 1)
    in_dim: int  # input features per step (conv1d / conv2d / maxpool2d: input channels; fc: dim_vec; relu: size)
    units: int  # outputs per step (conv1d / conv2d: output channels; maxpool2d: channels; fc: rows; relu: size)
    in_bits: int = 8  # lstm / gru: int8 or int16 sequences
    out_bits: int = 8
    kernel: int = 0  # conv1d / conv2d / maxpool2d
    stride: int = 1
    padding: int = 0
    width: int = 0  # conv2d / maxpool2d: input width
    sign: int = 0  # relu: 0 the pool's mixed signs, +1 all >= 0, -1 all < 0 (its C store is conditional)

    @classmethod
    def conv2d(cls, h: int, w: int, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> KernelShape:
        return cls("conv2d", h, cin, cout, kernel=k, stride=stride, padding=padding, width=w)

    @classmethod
    def maxpool2d(cls, h: int, w: int, ch: int, k: int, stride: int) -> KernelShape:
        return cls("maxpool2d", h, ch, ch, kernel=k, stride=stride, width=w)

    @classmethod
    def fc(cls, dim_vec: int, rows: int) -> KernelShape:
        return cls("fc", 1, dim_vec, rows)

    @classmethod
    def relu(cls, size: int, sign: int = 0) -> KernelShape:
        return cls("relu", 1, size, size, sign=sign)

    @property
    def name(self) -> str:
        if self.kind == "conv1d":
            return f"conv1d/{self.steps}x{self.in_dim}/o{self.units}/k{self.kernel}s{self.stride}p{self.padding}"
        if self.kind == "conv2d":
            return (f"conv2d/{self.steps}x{self.width}x{self.in_dim}/o{self.units}/k{self.kernel}s{self.stride}"
                    f"p{self.padding}")
        if self.kind == "maxpool2d":
            return f"maxpool2d/{self.steps}x{self.width}x{self.in_dim}/k{self.kernel}s{self.stride}"
        if self.kind == "fc":
            return f"fc/{self.in_dim}/r{self.units}"
        if self.kind == "relu":
            return f"relu/{self.in_dim}" + {0: "", 1: "/pos", -1: "/neg"}[self.sign]
        return f"{self.kind}/{self.steps}x{self.in_dim}/u{self.units}/{self.in_bits}-{self.out_bits}"

    def layer(self) -> LayerSpec:
        """The zoo layer this call computes (what the cost model counts); built as models/zoo.py's _Builder builds
        it. relu: the layer whose output the ReLU rectifies (the cost model counts its elements when relu is set)."""
        k, s, p = self.kernel, self.stride, self.padding
        if self.kind == "conv1d":
            out = (self.steps + 2 * p - k) // s + 1
            return LayerSpec("bench", "conv1d", (self.steps, self.in_dim), (out, self.units), k, s, p)
        if self.kind == "conv2d":
            oh, ow = ((n + 2 * p - k) // s + 1 for n in (self.steps, self.width))
            return LayerSpec("bench", "conv2d", (self.steps, self.width, self.in_dim), (oh, ow, self.units), k, s, p)
        if self.kind == "maxpool2d":
            oh, ow = ((n - k) // s + 1 for n in (self.steps, self.width))
            return LayerSpec("bench", "maxpool2d", (self.steps, self.width, self.in_dim), (oh, ow, self.in_dim), k, s)
        if self.kind == "fc":
            return LayerSpec("bench", "fc", (self.in_dim,), (self.units,))
        if self.kind == "relu":
            return LayerSpec("bench", "input", (self.in_dim,), (self.in_dim,), relu=True)
        return LayerSpec("bench", self.kind, (self.steps, self.in_dim), (self.steps, self.units),
                         out_bits=self.out_bits)


def default_grid() -> list[KernelShape]:
    """Shapes around and beyond the zoo's (har_rnn: LSTM 43x9 -> 32, GRUs 32 -> 64 -> 32 -> 6 with int16 inner
    sequences; motions_rnn: GRUs 8 -> 24 -> 12): steps, input width, units and the four width combinations."""
    out = []
    for kind in ("lstm", "gru"):
        for steps, in_dim, units in itertools.product((3, 11), (5, 9, 24), (4, 13, 32)):
            for bits in ((8, 8), (16, 16)):
                out.append(KernelShape(kind, steps, in_dim, units, *bits))
        for steps, in_dim, units in ((7, 32, 20), (5, 17, 6)):
            for bits in ((8, 16), (16, 8)):
                out.append(KernelShape(kind, steps, in_dim, units, *bits))
    for steps, cin, cout, k, s, p in ((128, 9, 9, 3, 3, 1), (100, 6, 8, 4, 4, 0), (40, 3, 5, 5, 1, 2),
                                      (33, 6, 4, 3, 2, 0), (64, 2, 16, 7, 2, 3), (50, 9, 12, 3, 1, 1),
                                      (20, 16, 8, 2, 2, 0), (75, 4, 6, 5, 3, 2), (30, 12, 3, 4, 1, 0),
                                      (90, 1, 10, 9, 4, 4)):
        out.append(KernelShape("conv1d", steps, cin, cout, kernel=k, stride=s, padding=p))
    return out + image_grid()


def image_grid() -> list[KernelShape]:
    """Shapes around and beyond digits_cnn's (8x8x1 -> conv 3x3 16 -> conv 3x3 32 -> maxpool 2 -> fc 128 -> 64,
    ReLU on 576 / 512 / 64 elements): conv2d kernels 1-5, strides 1-2, paddings 0-2, 1-16 channels in and out, up to
    16x16; pools 2-3 with strides 1-3 (the zoo's stride = kernel and others); fc inputs 5-300 with every tail
    (dim_vec % 4) and 1-64 rows; relu 1-3000 elements."""
    conv = [KernelShape.conv2d(*a) for a in (
        (8, 8, 1, 16, 3, 1, 0), (6, 6, 16, 16, 3, 1, 0), (16, 16, 3, 8, 5, 2, 2), (12, 10, 4, 6, 3, 1, 1),
        (9, 7, 2, 3, 3, 2, 1), (16, 16, 1, 4, 1, 1, 0), (10, 10, 8, 1, 2, 2, 0), (11, 13, 5, 7, 4, 3, 1),
        (7, 7, 16, 5, 5, 1, 2), (14, 12, 6, 12, 3, 2, 0), (5, 5, 12, 9, 2, 1, 1), (16, 16, 2, 2, 3, 1, 2))]
    pool = [KernelShape.maxpool2d(*a) for a in (
        (4, 4, 32, 2, 2), (8, 8, 1, 2, 2), (16, 16, 4, 2, 2), (16, 16, 3, 3, 3), (15, 15, 8, 3, 2), (9, 9, 6, 3, 1),
        (12, 10, 5, 2, 1), (10, 14, 16, 3, 3), (7, 7, 2, 2, 3), (16, 16, 16, 3, 2), (6, 6, 12, 3, 1))]
    fc = [KernelShape.fc(*a) for a in (
        (128, 64), (5, 1), (6, 40), (7, 13), (16, 8), (33, 3), (50, 20), (99, 11), (144, 30), (201, 7), (255, 25),
        (300, 40))]
    relu = [KernelShape.relu(n) for n in (1, 2, 3, 7, 16, 64, 100, 255, 576, 1000, 2047, 3000)]
    return conv + pool + fc + relu


def fast_grid(n: int = 48, seed: int = 7) -> list[KernelShape]:
    """More shapes for the DSP kernels, whose counts are more (pixel pairs and a leftover pixel, channel pairs and an
    odd channel, whole groups of 4 and a tail, staged few-channel patches, padded taps): `n` random conv2d, conv1d
    and fc shapes each (a fixed seed) with every parity and in_ch % 4, and pools with channels % 4 == 0."""

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.choice((1, 2, 3, 3, 4, 5))
        s, p = rng.choice((1, 1, 2, 3)), rng.randint(0, k // 2)
        h, w = rng.randint(k, 14), rng.randint(k, 14)
        out.append(KernelShape.conv2d(h, w, rng.randint(1, 20), rng.randint(1, 17), k, s, p))
    for _ in range(n):
        k = rng.choice((1, 2, 3, 4, 5, 7))
        s, p = rng.choice((1, 1, 2, 3)), rng.randint(0, k // 2)
        out.append(KernelShape("conv1d", rng.randint(k, 60), rng.randint(1, 20), rng.randint(1, 17), kernel=k,
                               stride=s, padding=p))
    out += [KernelShape.fc(rng.randint(1, 300), rng.randint(1, 40)) for _ in range(n)]
    for _ in range(n // 4):
        k = rng.choice((2, 3))
        out.append(KernelShape.maxpool2d(rng.randint(k, 16), rng.randint(k, 16), 4 * rng.randint(1, 8), k,
                                         rng.choice((1, 2, 3))))
    return sorted(set(out), key=lambda x: x.name)


def relu_sign_grid() -> list[KernelShape]:
    """ReLU on all-non-negative and all-negative data, to compare with the mixed-sign calls of the grid (its
    conditional store is data-dependent in C)."""
    return [KernelShape.relu(n, sign) for n in (64, 1000, 3000) for sign in (1, -1)]


def _shifts(shape: KernelShape) -> tuple[int, int, int]:
    """shift_x, shift_h, f_out that keep the gate pre-activations near q3.12's +-1 for the pools' values (int8
    inputs in [-64, 63], int16 in [-2048, 2047], weights in [-128, 127]: a dot product's spread grows as sqrt(n)),
    so the table lookups see both signs and both ends, as in a trained network."""
    grow = lambda n: (n.bit_length() + 1) // 2  # noqa: E731
    sx = (5 if shape.in_bits == 16 else 0) + grow(shape.in_dim)
    sh = (5 if shape.out_bits == 16 else 0) + grow(shape.units)
    return sx, sh, (11 if shape.out_bits == 16 else 6)


def _out_shift(n: int) -> int:
    """out_shift for a dot product of n q7 products of the pools' values (inputs in [-64, 63], weights in
    [-128, 127]: one product's spread about 2^11.4, the sum's grows as sqrt(n)): outputs spread near +-64, so the
    saturation branches see both outcomes, as in a trained network."""
    return 5 + (n.bit_length() + 1) // 2


def _size(values, default: int = 1) -> int:
    return max([*values, default])


def program(shapes: list[KernelShape]) -> str:
    """The benchmark's C source: pools, then per shape plat_phase_marker(2i), the call, plat_phase_marker(2i+1)."""
    seq = [s for s in shapes if s.kind in SEQUENCE_KINDS]
    img = [s for s in shapes if s.kind not in SEQUENCE_KINDS]
    w = _size(s.layer().weights for s in seq)
    b = _size(s.layer().biases for s in seq)
    seq_in = _size(s.steps * s.in_dim for s in seq)
    units = _size(s.units for s in seq)
    img_w = _size(s.layer().weights for s in img)
    img_b = _size(s.layer().biases for s in img)
    img_in = _size(prod(s.layer().in_shape) for s in img)
    relu = _size(s.in_dim for s in img if s.kind == "relu")
    seq_out = _size(s.layer().elements for s in shapes)
    lines = [
        "/* Generated by firmware/kernel_bench.py - do not edit. */",
        '#include "nn_q7.h"', '#include "nn_rnn_q7.h"', '#include "platform.h"', "",
        f"static q7_t pool_w[{w}];", f"static q7_t pool_b8[{b}];", f"static q15_t pool_b16[{b}];",
        f"static int16_t in16[{seq_in}];", f"static int8_t in8[{seq_in}];",
        f"static int16_t out16[{seq_out}];", f"static q15_t cell[{units}];",
        f"static q7_t img_w[{img_w}];", f"static q7_t img_b[{img_b}];", f"static q7_t img_in[{img_in}];",
        f"static q7_t relu_buf[{relu}];",
        "#define SCRATCH 0  /* the DSP kernels' scratch (measure(kernels=\"fast\") replaces this line) */", "",
        "static uint32_t lcg = 12345u;",
        "static int32_t draw(int32_t lo, int32_t span) { lcg = lcg * 1664525u + 1013904223u; "
        "return lo + (int32_t)((lcg >> 8) % (uint32_t)span); }", "",
    ]
    main = [
        "int main(void)", "{", "    uint32_t i;", "    plat_init();",
        f"    for (i = 0; i < {w}u; i++) pool_w[i] = (q7_t)draw(-128, 256);",
        f"    for (i = 0; i < {b}u; i++) {{ pool_b8[i] = (q7_t)draw(-128, 256); "
        "pool_b16[i] = (q15_t)draw(-4096, 8192); }",
        f"    for (i = 0; i < {seq_in}u; i++) {{ in16[i] = (int16_t)draw(-2048, 4096); "
        "in8[i] = (int8_t)draw(-64, 128); }",
        f"    for (i = 0; i < {img_w}u; i++) img_w[i] = (q7_t)draw(-128, 256);",
        f"    for (i = 0; i < {img_b}u; i++) img_b[i] = (q7_t)draw(-128, 256);",
        f"    for (i = 0; i < {img_in}u; i++) img_in[i] = (q7_t)draw(-64, 128);",
    ]
    # one small function per call: main's size (literal pools placed between a marker and a call) stays out of the
    # measured instructions
    for i, s in enumerate(shapes):
        main.append(f"    bench_{i}();")
        lines += [f"static __attribute__((noinline)) void bench_{i}(void)", "{"]
        if s.kind == "relu":  # in place: a fresh copy per call, outside the markers
            value = {0: "img_in[i]", 1: "(q7_t)(img_in[i] < 0 ? -1 - img_in[i] : img_in[i])",
                     -1: "(q7_t)(img_in[i] < 0 ? img_in[i] : -1 - img_in[i])"}[s.sign]
            lines.append(f"    uint32_t i;\n    for (i = 0; i < {s.in_dim}u; i++) relu_buf[i] = {value};")
        lines.append(f"    plat_phase_marker({2 * i}u);  /* {s.name} */")
        layer = s.layer()
        # the call's shapes and parameters in a static const struct, as firmware/codegen.py emits them
        if s.kind == "conv1d":
            out_len = layer.out_shape[0]
            lines.append(f"    static const nn_conv_params p = {{{{1, {s.steps}, {s.in_dim}}}, {{1, {out_len}, "
                         f"{s.units}}}, {s.kernel}, {s.padding}, {s.stride}, 2, 9}};")
            lines.append("    nn_conv1d_q7(&p, in8, pool_w, pool_b8, (q7_t *)out16, SCRATCH);")
        elif s.kind == "conv2d":
            sh = _out_shift(s.kernel * s.kernel * s.in_dim)
            oh, ow, _ = layer.out_shape
            lines.append(f"    static const nn_conv_params p = {{{{{s.steps}, {s.width}, {s.in_dim}}}, {{{oh}, {ow}, "
                         f"{s.units}}}, {s.kernel}, {s.padding}, {s.stride}, {sh - 1}, {sh}}};")
            lines.append("    nn_conv2d_q7(&p, img_in, img_w, img_b, (q7_t *)out16, SCRATCH);")
        elif s.kind == "maxpool2d":
            oh, ow, _ = layer.out_shape
            lines.append(f"    static const nn_pool_params p = {{{{{s.steps}, {s.width}, {s.in_dim}}}, {{{oh}, {ow}, "
                         f"{s.in_dim}}}, {s.kernel}, {s.stride}}};")
            lines.append("    nn_maxpool2d_q7(&p, img_in, (q7_t *)out16);")
        elif s.kind == "fc":
            sh = _out_shift(s.in_dim)
            lines.append(f"    static const nn_fc_params p = {{{s.in_dim}, {s.units}, {sh - 1}, {sh}}};")
            lines.append("    nn_fc_q7(&p, img_in, img_w, img_b, (q7_t *)out16, SCRATCH);")
        elif s.kind == "relu":
            lines.append(f"    nn_relu_q7(relu_buf, {s.in_dim}u);")
        elif s.kind in ("lstm", "gru"):
            sx, sh, f_out = _shifts(s)
            src = "in16" if s.in_bits == 16 else "in8"
            cell = "cell, " if s.kind == "lstm" else ""
            lines.append(f"    static const nn_rnn_params p = {{{s.steps}, {s.in_dim}, {s.units}, {s.in_bits}, "
                         f"{s.out_bits}, {sx}, {sh}, {f_out}}};")
            lines.append(f"    nn_{s.kind}_q7(&p, {src}, pool_w, pool_w + {3 * s.units * s.in_dim}, pool_b16, "
                         f"{cell}out16);")
        else:
            raise ValueError(f"kernel benchmark: unknown kind {s.kind!r}; kinds: {', '.join(KINDS)}")
        lines += [f"    plat_phase_marker({2 * i + 1}u);", "}", ""]
    main += ["    plat_exit(0);", "}", ""]
    return "\n".join(lines + main)


@dataclass(frozen=True)
class KernelRun:
    shape: KernelShape
    instructions: int  # retired between the two markers around the call (the call and one marker entry)
    sources_sha256: str
    elf_sha256: str
    toolchain: str
    emulator: str


def measure(shapes: list[KernelShape], work: str | Path, timeout_s: float = 300.0,
            kernels: str = "portable") -> list[KernelRun]:
    """Build the benchmark with the firmware's Cortex-M4 flags and runtime, run it on qemu-an386 with the
    instruction-count plugin, and return each call's instructions. kernels: "portable" (the plain C loops the
    counts model describes; scratch NULL) or "fast" (the DSP kernels, firmware/build.py's choice on cortex-m4, with a
    scratch of the largest models.kernels.scratch_bytes)."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    src = work / "kernel_bench.c"
    text = program(shapes)
    if kernels == "fast":
        need = max(scratch_bytes(s.layer()) for s in shapes if s.kind != "relu") if shapes else 0
        text = text.replace("#define SCRATCH 0", f"static q15_t scratch[{max(need, 2) // 2 + 1}];\n#define SCRATCH scratch")
    src.write_text(text)
    cm = C_DIR / "cortexm"
    elf = work / "kernel_bench.elf"
    core = [n for n in kernel_sources("cortex-m4", kernels) if n.startswith("nn_")]
    sources = [src, *(C_DIR / n for n in core)]
    defines = ["-DNN_PORTABLE_KERNELS"] if kernels == "portable" else []
    cmd = [ARM_CC, *M4_FLAGS, *COMMON_FLAGS, *defines, f"-I{C_DIR}", f"-I{cm}", *map(str, sources),
           *(str(cm / n) for n in M4_RUNTIME), str(cm / "platform_qemu.c"), "-T", str(cm / "nrf52840.ld"),
           *M4_LINK, "-o", str(elf), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"kernel benchmark: {ARM_CC} failed: {proc.stderr.strip().splitlines()[-1:]}")
    run = run_elf(elf, timeout=timeout_s, count=True)
    if run.exit_status != 0 or len(run.markers) != 2 * len(shapes):
        raise RuntimeError(f"kernel benchmark: exit status {run.exit_status}, {len(run.markers)} markers for "
                           f"{len(shapes)} calls")
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    elf_digest = hashlib.sha256(elf.read_bytes()).hexdigest()
    tool = toolchain_version("cortex-m4")
    return [KernelRun(s, run.markers[2 * i + 1] - run.markers[2 * i], digest, elf_digest, tool,
                      f"qemu {qemu_version()}") for i, s in enumerate(shapes)]


def rows(runs: list[KernelRun], loo: dict[KernelShape, float], date: str) -> list[dict]:
    """CSV rows: loo_error with the cost model's counts."""
    return [{"kind": r.shape.kind, "shape": r.shape.name, **{k: v for k, v in asdict(r.shape).items() if k != "kind"},
             "instructions": r.instructions, "loo_error": loo.get(r.shape), "sources_sha256": r.sources_sha256,
             "elf_sha256": r.elf_sha256, "toolchain": r.toolchain, "emulator": r.emulator, "date": date}
            for r in runs]
