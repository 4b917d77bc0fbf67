"""Frozen-network speed of the portable and the Cortex-M4 DSP kernels: one forward pass of the CIFAR CNN up to conv3
and of har_rnn up to gru3, built for qemu-an386 from the generated firmware sources (firmware/codegen.py on the
campaign's generated CIFAR-10 / UCI HAR files: real layouts, generated values; the network is pretrained and
quantized as for any study), run under the instruction-count plugin with a marker before every layer.

Prints per layer and for the whole pass: MACs, retired instructions (measured, plugin), estimated cycles (the static
Cortex-M4 timing of firmware/cycle_estimate.py over the plugin's per-block counts: an estimate, not a measurement)
and estimated cycles per MAC; the frozen activation memory (the generated buffers dse_act* / dse_arena* and the
kernels' scratch dse_scratch*, sizes from the ELF's symbol table); and checks that both builds compute the same
feature bytes. Appends rows to benchmarks/results/kernel_speed.csv and ends with one line:

    cifar_pass_instructions=N cifar_pass_cycles_est=N har_pass_instructions=N har_pass_cycles_est=N cifar_arena_bytes=N

(figures of the fast kernels; cifar_arena_bytes = the frozen arena of the liveness plan, DSE_ARENA_BYTES: layer
outputs, fused conv -> pool bands and the kernels' scratch).

    .venv/bin/python benchmarks/kernel_speed.py [--work DIR]
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# (short name, task, model, cut): the two passes
PASSES = (("cifar", "cifar3", "cifar_cnn", "conv3"), ("har", "har3b", "har_rnn", "gru3"))
KERNEL_CALL = re.compile(r"\bnn_(conv2d_q7|conv2d_rows_q7|conv1d_q7|maxpool2d_q7|fc_q7|lstm_q7|gru_q7)\s*\(")
RELU_CALL = re.compile(r"\bnn_relu_q7\s*\(")
ACTIVATION_SYMBOLS = ("dse_act", "dse_arena", "dse_band", "dse_scratch")  # generated frozen-layer RAM
BENCH_MAIN = """/* kernel_speed.py: one frozen forward pass, markers between layers (in dse_model.c), feature bytes printed */
#include <stdint.h>
#include <string.h>
#include "dse_model.h"
#include "platform.h"

static uint8_t feature[DSE_FEATURE_BYTES + 4];
#include "bench_input.h"  /* bench_input[DSE_INPUT_SIZE]: the first collection input of the generated draw */

int main(void)
{
    static const char hexd[] = "0123456789abcdef";
    uint32_t i;
    char b[2];
    plat_init();
    dse_frozen_forward(bench_input, (void *)feature);
    plat_write("feature ", 8);
    for (i = 0; i < DSE_FEATURE_BYTES; i++) {
        b[0] = hexd[feature[i] >> 4];
        b[1] = hexd[feature[i] & 15];
        plat_write(b, 2);
    }
    plat_write("\\n", 1);
    plat_exit(0);
}
"""


class BenchError(RuntimeError):
    """A step of the benchmark failed (one line saying which)."""


@dataclass
class Step:
    """One measured span of the pass: the zoo layers it computes (a fused kernel may compute two)."""

    layers: list[str]
    macs: int
    instructions: int
    cycles_est: int

    @property
    def name(self) -> str:
        return "+".join(self.layers)


@dataclass
class PassRun:
    steps: list[Step]
    feature_hex: str
    ram: dict[str, int]  # activation symbol -> bytes

    @property
    def instructions(self) -> int:
        return sum(s.instructions for s in self.steps)

    @property
    def cycles_est(self) -> int:
        return sum(s.cycles_est for s in self.steps)

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.steps)


def _statements(body: str) -> list[str]:
    """Top-level statements of a C function body (a for loop with its braces is one)."""
    out, cur, depth = [], [], 0
    for line in body.splitlines():
        if not line.strip():
            continue
        cur.append(line)
        depth += line.count("{") - line.count("}")
        if depth == 0 and (line.rstrip().endswith(";") or line.rstrip().endswith("}")):
            out.append("\n".join(cur))
            cur = []
    if cur:
        raise BenchError(f"kernel_speed: cannot split dse_frozen_forward's body at: {cur[0].strip()}")
    return out


def instrument(source: str, layer_names: list[str]) -> tuple[str, list[list[str]]]:
    """dse_model.c with plat_phase_marker(j) before the j-th step of dse_frozen_forward and one after the last;
    returns the source and each step's zoo layers (a ReLU statement belongs to the next step, as relu_in)."""
    m = re.search(r"(void dse_frozen_forward\([^)]*\)\n\{\n)(.*?)(\n\}\n)", source, re.S)
    if not m:
        raise BenchError("kernel_speed: dse_frozen_forward not found in the generated dse_model.c")
    groups: list[list[str]] = []
    pending: list[str] = []
    for stmt in _statements(m.group(2)):
        pending.append(stmt)
        if KERNEL_CALL.search(stmt) or not RELU_CALL.search(stmt):
            groups.append(pending)
            pending = []
    if pending:
        groups.append(pending)
    names = iter(layer_names)
    steps, body = [], []
    for j, group in enumerate(groups):
        calls = sum(len(KERNEL_CALL.findall(s)) for s in group)
        try:
            steps.append([next(names) for _ in range(calls)])
        except StopIteration:
            raise BenchError("kernel_speed: more kernel calls in dse_frozen_forward than layers to the cut") from None
        body += [f"    plat_phase_marker({j}u);", *group]
    body.append(f"    plat_phase_marker({len(groups)}u);")
    if next(names, None) is not None:
        raise BenchError("kernel_speed: fewer kernel calls in dse_frozen_forward than layers to the cut")
    text = source[:m.start(2)] + "\n".join(body) + source[m.end(2):]
    return '#include "platform.h"\n' + text, steps


def generate(task: str, model: str, cut: str, work: Path):
    from firmware import codegen
    from firmware.calibrate import campaign_data
    from vocabulary.configuration import Configuration

    config = Configuration(task=task, model=model, cut=cut, hidden=0, samples=12, epochs=1, batch=4, patience=1)
    return codegen.generate(config, work / model, data_path=campaign_data(task, work), test_limit=1)


def build(gen_dir: Path, out: Path, kernels: str, layer_names: list[str]) -> tuple[Path, list[list[str]]]:
    from firmware.build import ARM_CC, C_DIR, COMMON_FLAGS, M4_FLAGS, M4_LINK, M4_RUNTIME, kernel_sources

    out.mkdir(parents=True, exist_ok=True)
    text, steps = instrument((gen_dir / "dse_model.c").read_text(), layer_names)
    (out / "dse_model.c").write_text(text)
    (out / "bench_main.c").write_text(BENCH_MAIN)
    (out / "bench_input.h").write_text(_input_header(gen_dir))
    cm = C_DIR / "cortexm"
    core = [C_DIR / n for n in kernel_sources("cortex-m4", kernels) if n.startswith("nn_")]
    elf = out / "kernel_speed.elf"
    defines = ["-DNN_PORTABLE_KERNELS"] if kernels == "portable" else []
    cmd = [ARM_CC, *M4_FLAGS, *COMMON_FLAGS, *defines, f"-I{gen_dir}", f"-I{C_DIR}", f"-I{cm}",
           str(out / "bench_main.c"), str(out / "dse_model.c"), *map(str, core),
           *(str(cm / n) for n in M4_RUNTIME), str(cm / "platform_qemu.c"), "-T", str(cm / "nrf52840.ld"),
           *M4_LINK, "-o", str(elf), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"kernel_speed: {ARM_CC} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return elf, steps


def _input_header(gen_dir: Path) -> str:
    """The first input of the generated input stream (dse_inputs.bin: a header of 5 little-endian uint32 - magic,
    version, samples, test inputs, input size - then per input its label byte and int8 values) as a C array."""
    import struct

    data = (gen_dir / "dse_inputs.bin").read_bytes()
    size = struct.unpack_from("<5I", data)[4]
    values = struct.unpack_from(f"<{size}b", data, 20 + 1)
    return ("static const int8_t bench_input[DSE_INPUT_SIZE] = {\n" + ",".join(map(str, values)) + "\n};\n")


def arena_define(gen_dir: Path) -> int:
    """DSE_ARENA_BYTES of the generated header: the frozen arena of the liveness plan (dse_arena is the region it
    shares with mt_train's work, which a head may make larger)."""
    m = re.search(r"#define DSE_ARENA_BYTES (\d+)u", (gen_dir / "dse_model.h").read_text())
    if m is None:
        raise BenchError("kernel_speed: DSE_ARENA_BYTES not found in the generated dse_model.h")
    return int(m.group(1))


def activation_ram(elf: Path) -> dict[str, int]:
    """Bytes of the generated frozen-layer RAM objects (symbol sizes)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    out: dict[str, int] = {}
    with open(elf, "rb") as fh:
        for section in ELFFile(fh).iter_sections():
            if isinstance(section, SymbolTableSection):
                for sym in section.iter_symbols():
                    if sym["st_info"]["type"] == "STT_OBJECT" and sym.name.startswith(ACTIVATION_SYMBOLS):
                        out[sym.name] = int(sym["st_size"])
    return out


def run_pass(elf: Path, steps: list[list[str]], macs: dict[str, int]) -> PassRun:
    from firmware.boards.qemu import run_elf
    from firmware.cycle_estimate import CodeImage, phase_estimate, time_blocks

    run = run_elf(elf, timeout=600, count=True, blocks=True)
    feature = re.search(r"feature ([0-9a-f]*)", run.output)
    if run.exit_status != 0 or feature is None or run.blocks is None:
        raise BenchError(f"kernel_speed: {elf.name} exited {run.exit_status} without its feature line")
    marks = run.blocks.markers
    if len(marks) != len(steps) + 1:
        raise BenchError(f"kernel_speed: {len(marks)} markers for {len(steps)} layers")
    diffs = [{k: c - a.counts.get(k, 0) for k, c in b.counts.items() if c != a.counts.get(k, 0)}
             for a, b in zip(marks, marks[1:])]
    timings = time_blocks(CodeImage.from_elf(elf), set().union(*diffs))
    out = []
    for layers, diff, a, b in zip(steps, diffs, marks, marks[1:]):
        est = phase_estimate(timings, diff)
        if est.instructions != b.instructions - a.instructions:
            raise BenchError("kernel_speed: block counts x sizes differ from the plugin's instruction counter")
        out.append(Step(layers, sum(macs[n] for n in layers), est.instructions, est.cycles))
    return PassRun(out, feature.group(1), activation_ram(elf))


def _table(name: str, runs: dict[str, PassRun]) -> None:
    port, fast = runs["portable"], runs["fast"]
    print(f"\n{name}: instructions (measured) / cycles (estimate, static CM4 timing) per layer")
    print(f"  {'layer':14s} {'MACs':>9s} | {'portable insns':>14s} {'cycles':>11s} {'c/MAC':>6s} | "
          f"{'fast insns':>11s} {'cycles':>11s} {'c/MAC':>6s} | {'speed-up':>8s}")
    rows = [(p.name, p.macs, p, f) for p, f in zip(port.steps, fast.steps)]
    rows.append(("pass", port.macs, port, fast))
    for label, macs, p, f in rows:
        cpm = (lambda x: f"{x.cycles_est / macs:6.2f}" if macs else f"{'-':>6s}")
        print(f"  {label:14s} {macs:9,d} | {p.instructions:14,d} {p.cycles_est:11,d} {cpm(p)} | "
              f"{f.instructions:11,d} {f.cycles_est:11,d} {cpm(f)} | {p.cycles_est / f.cycles_est:7.2f}x")
    print(f"  frozen activation RAM (fast build): " + ", ".join(f"{k} {v:,d} B" for k, v in sorted(fast.ram.items()))
          + f"; total {sum(fast.ram.values()):,d} B")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="directory for the generated data, sources and ELFs (default: a temporary one)")
    args = parser.parse_args()
    from firmware.boards.qemu import qemu_version
    from firmware.build import toolchain_version
    from models.zoo import get_model
    from results_csv import append_rows

    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="kernel-speed-")
    work = Path(args.work or tmp.name)
    results: dict[str, dict[str, PassRun]] = {}
    arenas: dict[str, int] = {}
    csv_rows = []
    date, tool, emu = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), \
        toolchain_version("cortex-m4"), f"qemu {qemu_version()}"
    try:
        for short, task, model, cut in PASSES:
            spec = get_model(model)
            names = [layer.name for layer in spec.layers[1:spec.layers.index(spec.layer(cut)) + 1]]
            macs = {layer.name: layer.macs for layer in spec.layers}
            gen = generate(task, model, cut, work)
            arenas[short] = arena_define(Path(gen.out_dir))
            results[short] = {}
            for kernels in ("portable", "fast"):
                elf, steps = build(Path(gen.out_dir), work / f"{model}-{kernels}", kernels, names)
                results[short][kernels] = run = run_pass(elf, steps, macs)
                for step in run.steps + [Step(["pass"], run.macs, run.instructions, run.cycles_est)]:
                    csv_rows.append({"date": date, "model": model, "cut": cut, "kernels": kernels, "layer": step.name,
                                     "macs": step.macs, "instructions": step.instructions,
                                     "cycles_est": step.cycles_est,
                                     "cycles_per_mac_est": round(step.cycles_est / step.macs, 3) if step.macs else "",
                                     "activation_ram_bytes": arenas[short], "toolchain": tool,
                                     "emulator": emu, "host": platform.node()})
            if results[short]["portable"].feature_hex != results[short]["fast"].feature_hex:
                raise BenchError(f"kernel_speed: {model}: the fast kernels' feature differs from the portable one's")
            _table(f"{model} to {cut} ({task}, generated data; features of both builds identical)", results[short])
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        if tmp is not None:
            tmp.cleanup()
    path = append_rows("kernel_speed", csv_rows)
    cifar, har = results["cifar"], results["har"]
    print(f"\nhar_rnn pass: fast = {har['fast'].instructions / har['portable'].instructions:.1%} of the portable "
          f"kernels' instructions; rows appended to {path}")
    print(f"cifar_pass_instructions={cifar['fast'].instructions} cifar_pass_cycles_est={cifar['fast'].cycles_est} "
          f"har_pass_instructions={har['fast'].instructions} har_pass_cycles_est={har['fast'].cycles_est} "
          f"cifar_arena_bytes={arenas['cifar']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
