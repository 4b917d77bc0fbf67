"""Generated sources -> a host executable or a Cortex-M4 ELF; flash and static RAM read from the ELF.

Two images of the same generated sources (`image`):
- "validation" (default): harness.c's main (built with -DDSE_HARNESS): the inputs come from the host while it runs
  (the input stream codegen wrote; `Binary.inputs` names it for the board), phases, markers, JSON lines;
- "deployed": deployed.c's main, what a product ships and what studies price: the frozen layers, the MicroTL
  runtime and one sensor input buffer, no harness. Its flash and static RAM are the deployed image's measured
  figures; the validation ELF's minus them is the harness's share.

Targets:
- "host": `cc -std=c99 -O2 -ffp-contract=off` with c/host/platform_host.c; runs as a native process.
- "cortex-m4": arm-none-eabi-gcc for the nRF52840's Cortex-M4F (hard float, newlib-nano), linked with
  c/cortexm/nrf52840.ld (1 MB flash at 0x0, 256 KB RAM at 0x20000000), c/cortexm/startup.c + syscalls.c and the platform of the
  board (`platform="qemu"`: c/cortexm/platform_qemu.c, semihosting; `platform="nrf52840"`:
  c/cortexm/platform_nrf52840.c, RTT + DWT).
Both targets build with -ffp-contract=off: no fused multiply-add, so float rounding is the same on both.

Sizes (`Binary`): flash_bytes = allocated sections with contents (.text, .rodata, vectors, .ARM.exidx, the load
image of .data, ...); static_ram_bytes = writable allocated sections (.data + .bss and the like), excluding the
stack and heap reservations (sections whose name contains "stack" or "heap"); the stack a run really used is
reported by the firmware itself (memory line). A link that overflows a region raises DoesNotFit with a one-line
message such as "does not fit: RAM over by 1234 bytes".
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from .codegen import HEADER, INPUTS, SOURCE, GeneratedSources

C_DIR = Path(__file__).resolve().parent / "c"
CORE_SOURCES = ("microtl.c", "nn_q7.c", "nn_rnn_q7.c")
IMAGES = {"validation": "harness.c", "deployed": "deployed.c"}  # image -> its main
TARGETS = ("host", "cortex-m4")
# frozen-layer kernels: "fast" = the DSP kernels on cortex-m4 (nn_q7_m4.c replaces nn_q7.c; nn_rnn_q7.c's DSP
# products), "portable" = the plain C everywhere (the host always builds it); models/kernels.py mirrors this
KERNELS = ("fast", "portable")
M4_KERNEL_SOURCE = {"nn_q7.c": "nn_q7_m4.c"}
PLATFORMS = {"qemu": "platform_qemu.c", "nrf52840": "platform_nrf52840.c"}
COMMON_FLAGS = ["-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter",
                "-Wno-type-limits"]  # loops like i < DSE_N_TEST with a generated 0
M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-ffunction-sections",
            "-fdata-sections", "--specs=nano.specs"]
M4_LINK = ["-nostartfiles", "-Wl,--gc-sections"]
M4_RUNTIME = ("startup.c", "syscalls.c")  # c/cortexm/: vector table, reset, _sbrk/_write/_exit (no nosys, no rdimon)
HOST_CC = "cc"
ARM_CC = "arm-none-eabi-gcc"


class BuildError(RuntimeError):
    """The compiler or linker failed; the message names the command's first error line."""


class DoesNotFit(BuildError):
    """The firmware does not fit the board's memory (a linker region overflowed)."""


@dataclass(frozen=True)
class Binary:
    path: Path
    target: str
    flash_bytes: int
    static_ram_bytes: int
    toolchain_version: str
    elf_sha256: str
    platform: str | None = None  # cortex-m4: "qemu" or "nrf52840"; host: None
    image: str = "validation"  # "validation" (harness) or "deployed"
    inputs: Path | None = None  # validation: the input stream the board feeds (codegen's dse_inputs.bin)


def toolchain_version(target: str) -> str:
    cc = HOST_CC if target == "host" else ARM_CC
    if shutil.which(cc) is None:
        raise BuildError(f"compiler {cc} not found; install it (see .ci/setup.sh)")
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0].strip() if out else cc


def kernel_sources(target: str, kernels: str = "fast") -> list[str]:
    """The firmware's C sources (in c/) for a target and kernel choice."""
    if kernels not in KERNELS:
        raise ValueError(f"unknown kernels {kernels!r}; choose one of: {', '.join(KERNELS)}")
    if target == "cortex-m4" and kernels == "fast":
        return [M4_KERNEL_SOURCE.get(name, name) for name in CORE_SOURCES]
    return list(CORE_SOURCES)


def build(sources: GeneratedSources | str | Path, target: str, out_dir: str | Path, extra_defines=(),
          *, platform: str | None = None, image: str = "validation", kernels: str = "fast") -> Binary:
    """Compile and link the firmware `image` for `target` into out_dir; returns the binary and its sizes.
    kernels="portable" builds the plain C kernels on cortex-m4 too (the kernel benchmark's baseline)."""
    if target not in TARGETS:
        raise ValueError(f"unknown build target {target!r}; choose one of: {', '.join(TARGETS)}")
    if image not in IMAGES:
        raise ValueError(f"unknown firmware image {image!r}; choose one of: {', '.join(IMAGES)}")
    core = kernel_sources(target, kernels)
    gen_dir = sources.out_dir if isinstance(sources, GeneratedSources) else Path(sources)
    gen_dir = Path(gen_dir).resolve()
    for name in (HEADER, SOURCE):
        if not (gen_dir / name).is_file():
            raise BuildError(f"generated source {gen_dir / name} not found; run firmware.codegen.generate first")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    defines = [f"-D{d}" for d in extra_defines] + (["-DDSE_HARNESS=1"] if image == "validation" else []) + \
        (["-DNN_PORTABLE_KERNELS"] if kernels == "portable" else [])
    includes = [f"-I{gen_dir}", f"-I{C_DIR}"]
    srcs = [str(C_DIR / IMAGES[image])] + [str(C_DIR / name) for name in core] + [str(gen_dir / SOURCE)]
    prefix = "firmware" if image == "validation" else "deployed"
    if target == "host":
        if platform not in (None, "host"):
            raise ValueError(f"target host has no platform {platform!r}")
        platform = None
        exe = out / f"{prefix}-host"
        cmd = [HOST_CC, *COMMON_FLAGS, *defines, *includes, *srcs, str(C_DIR / "host" / "platform_host.c"),
               "-o", str(exe), "-lm"]
    else:
        platform = platform or "qemu"
        if platform not in PLATFORMS:
            raise ValueError(f"unknown cortex-m4 platform {platform!r}; choose one of: {', '.join(PLATFORMS)}")
        cm = C_DIR / "cortexm"
        needed = [cm / "nrf52840.ld", *(cm / name for name in M4_RUNTIME), cm / PLATFORMS[platform]]
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise BuildError(f"cortex-m4 build needs {', '.join(missing)}")
        exe = out / f"{prefix}-{platform}.elf"
        cmd = [ARM_CC, *M4_FLAGS, *COMMON_FLAGS, *defines, *includes, f"-I{cm}", *srcs,
               *(str(cm / name) for name in M4_RUNTIME), str(cm / PLATFORMS[platform]), "-T", str(cm / "nrf52840.ld"), *M4_LINK,
               f"-Wl,-Map={out / (exe.stem + '.map')}", "-o", str(exe), "-lm"]
    version = toolchain_version(target)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    (out / f"build-{image}.log").write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    if proc.returncode != 0:
        _raise_build_error(proc.stderr + proc.stdout, out / f"build-{image}.log")
    flash, ram = elf_sizes(exe)
    inputs = None
    if image == "validation":
        inputs = sources.inputs if isinstance(sources, GeneratedSources) else gen_dir / INPUTS
    return Binary(exe, target, flash, ram, version, hashlib.sha256(exe.read_bytes()).hexdigest(), platform, image,
                  inputs)


_OVERFLOW = re.compile(r"region [`'\u2018]?(\w+)['\u2019]? overflowed by (\d+) bytes")
_OVERLAP = re.compile(r"section (\S+) VMA \[([0-9a-fA-F]+),([0-9a-fA-F]+)\] overlaps section (\S+) VMA "
                      r"\[([0-9a-fA-F]+),([0-9a-fA-F]+)\]")


def _overflows(output: str) -> dict[str, int]:
    """Region -> bytes over, from the linker's messages.

    The linker script places the stack reservation at the top of RAM at a fixed address, so when .data + .bss grow
    into it ld reports the region "overflowed by 0 bytes" (its counter restarts at the stack) together with
    "section .stack VMA [a,b] overlaps section .bss VMA [c,d]": the real excess is then d + 1 - a, the bytes that
    .data/.bss reach into the stack reservation (what must be freed for everything, stack included, to fit)."""
    overflows: dict[str, int] = {}
    for region, amount in _OVERFLOW.findall(output):
        overflows[region] = max(overflows.get(region, 0), int(amount))
    for name_a, a0, a1, name_b, b0, b1 in _OVERLAP.findall(output):
        spans = {name_a: (int(a0, 16), int(a1, 16)), name_b: (int(b0, 16), int(b1, 16))}
        reserved = [n for n in spans if "stack" in n or "heap" in n]
        if len(reserved) == 1:
            other = next(n for n in spans if n not in reserved)
            over = spans[other][1] + 1 - spans[reserved[0]][0]
            overflows["RAM"] = max(overflows.get("RAM", 0), over)
    if "RAM" not in overflows and "do not fit in" in output:  # the script's ASSERT alone: size unknown to ld
        overflows["RAM"] = -1
    return overflows


def _raise_build_error(output: str, log: Path) -> None:
    overflows = _overflows(output)
    if overflows:
        raise DoesNotFit("does not fit: " + "; ".join(
            f"{r} over by {n} bytes" if n >= 0 else f"{r} too small" for r, n in overflows.items()))
    lines = [line for line in output.splitlines() if "error" in line.lower()] or output.splitlines() or ["?"]
    raise BuildError(f"firmware build failed: {lines[0].strip()} (full log: {log})")


def elf_sizes(path: str | Path) -> tuple[int, int]:
    """(flash bytes, static RAM bytes) of an ELF; see the module docstring for what is counted."""

    flash = ram = 0
    with open(path, "rb") as fh:
        for section in ELFFile(fh).iter_sections():
            flags = section["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC or section["sh_size"] == 0:
                continue
            size, name = int(section["sh_size"]), section.name
            reserved = "stack" in name or "heap" in name
            has_contents = section["sh_type"] != "SHT_NOBITS"
            if has_contents and not reserved:
                flash += size  # .data counts here too: its initial values are stored in flash
            if flags & SH_FLAGS.SHF_WRITE and not reserved:
                ram += size
    return flash, ram
