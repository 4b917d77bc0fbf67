"""The emulated board qemu-an386: startup + semihosting platform + instruction-count plugin + runner, exercised with a
small hand-written Cortex-M4F program (no generated sources needed)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from firmware.boards import FirmwareTimeout, get_board
from firmware.boards.qemu import (QemuBoard, elf_symbols, marker_address, phase_instructions, qemu_version,
                                  run_elf, timeout_for)
from firmware.qemu_plugin import ensure_plugin

from qemu_fw_util import compile_m4, require_tools

K_COLLECTION, K_TRAINING, K_EVALUATION = 1000, 5000, 20
STACK_ARRAY, HEAP_ALLOC = 2000, 3000

TINY = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "platform.h"

static void put(const char *s) { plat_write(s, strlen(s)); }
static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

volatile uint32_t k_iter[3] = {K_COLLECTION, K_TRAINING, K_EVALUATION};
volatile float f_in = 1.5f;
volatile int n_harmonic = 100;
volatile float f_sink;
char *volatile heap_keep;
volatile uint8_t stack_sink;

/* exactly 2 instructions per iteration */
__attribute__((noinline)) static void spin(uint32_t n)
{
    __asm volatile("1: subs %0, %0, #1 \n bne 1b" : "+r"(n) : : "cc");
}

/* one phase: identical code for every phase, so per-phase counts differ by exactly 2 x the iteration delta */
__attribute__((noinline)) static void phase(uint32_t k, uint32_t n)
{
    plat_phase_marker(k);
    spin(n);
    plat_phase_marker(k + 1);
}

__attribute__((noinline)) static void deep(uint32_t n)
{
    volatile uint8_t buf[STACK_ARRAY];
    for (uint32_t i = 0; i < n; i++) buf[i] = (uint8_t)i;
    stack_sink = buf[n - 1];
}

int main(void)
{
    char line[160];
    plat_init();
    put("{\"event\":\"hello\",\"firmware\":\"tiny\"}\n");
    phase(0, k_iter[0]);
    put("{\"event\":\"phase\",\"phase\":\"collection\",\"edge\":\"end\"}\n");
    phase(2, k_iter[1]);
    /* float math on the FPU (hard-float ABI; a disabled FPU would fault) */
    float x = f_in;
    float y = x * x + 0.25f;
    float h = 0.0f;
    for (int i = 1, n = n_harmonic; i <= n; i++) h += 1.0f / (float)i;
    float r = sqrtf(2.0f * f_in);
    snprintf(line, sizeof line, "{\"event\":\"float\",\"y\":%lu,\"h\":%lu,\"r\":%lu}\n",
             (unsigned long)f32_bits(y), (unsigned long)f32_bits(h), (unsigned long)f32_bits(r));
    put(line);
    phase(4, k_iter[2]);
    heap_keep = malloc(HEAP_ALLOC);
    memset(heap_keep, 1, HEAP_ALLOC);
    deep(STACK_ARRAY);
    snprintf(line, sizeof line, "{\"event\":\"memory\",\"stack_bytes\":%ld,\"heap_bytes\":%ld}\n",
             (long)plat_stack_used(), (long)plat_heap_used());
    put(line);
    put("{\"event\":\"done\",\"status\":7}\n");
    return 7;
}
"""

HANG = r"""
#include <string.h>
#include "platform.h"
volatile unsigned spin_count;
int main(void)
{
    plat_init();
    plat_write("{\"event\":\"hello\"}\n", 18);
    plat_phase_marker(0);
    for (;;) spin_count++;
}
"""

FAULT = r"""
#include <stdint.h>
#include "platform.h"
int main(void)
{
    plat_init();
    plat_write("{\"event\":\"hello\"}\n", 18);
    __asm volatile("udf #0");   /* undefined instruction: UsageFault, escalated to HardFault */
    return 0;
}
"""


@pytest.fixture(scope="module")
def tiny_elf(tmp_path_factory):
    require_tools()
    d = tmp_path_factory.mktemp("tiny")
    src = d / "tiny.c"
    src.write_text(TINY)
    defines = [f"K_COLLECTION={K_COLLECTION}u", f"K_TRAINING={K_TRAINING}u", f"K_EVALUATION={K_EVALUATION}u",
               f"STACK_ARRAY={STACK_ARRAY}", f"HEAP_ALLOC={HEAP_ALLOC}"]
    return compile_m4([src], d / "tiny.elf", defines=defines)


@pytest.fixture(scope="module")
def tiny_runs(tiny_elf):
    return run_elf(tiny_elf, timeout=30), run_elf(tiny_elf, timeout=30)


def test_exit_status_output_and_float(tiny_runs):
    run = tiny_runs[0]
    assert run.exit_status == 7
    events = run.events()
    assert events[0] == {"event": "hello", "firmware": "tiny"}
    assert events[-1] == {"event": "done", "status": 7}
    flt = next(e for e in events if e["event"] == "float")
    as_bits = lambda v: int(np.float32(v).view(np.uint32))  # noqa: E731
    h = np.float32(0.0)
    for i in range(1, 101):
        h = np.float32(h + np.float32(1.0) / np.float32(i))
    assert flt["y"] == as_bits(np.float32(1.5) * np.float32(1.5) + np.float32(0.25)) == 0x40200000
    assert flt["h"] == as_bits(h)
    assert flt["r"] == as_bits(np.sqrt(np.float32(3.0)))
    assert run.qemu_version.startswith("QEMU emulator version")


def test_instruction_counts_deterministic_and_exact(tiny_runs):
    a, b = tiny_runs
    assert len(a.markers) == 6
    assert a.markers == b.markers and a.total_instructions == b.total_instructions
    ph = a.phase_instructions
    assert ph == phase_instructions(a.markers) and set(ph) == {"collection", "training", "evaluation"}
    # the loop is 2 instructions per iteration; everything else in a phase is the same code
    assert ph["training"] - ph["collection"] == 2 * (K_TRAINING - K_COLLECTION)
    assert ph["collection"] - ph["evaluation"] == 2 * (K_COLLECTION - K_EVALUATION)
    overhead = ph["collection"] - 2 * K_COLLECTION
    assert 0 < overhead < 40
    assert a.markers == sorted(a.markers) and a.total_instructions > a.markers[-1]


def test_memory_high_water_marks(tiny_runs):
    mem = next(e for e in tiny_runs[0].events() if e["event"] == "memory")
    assert STACK_ARRAY < mem["stack_bytes"] < STACK_ARRAY + 1024
    assert HEAP_ALLOC <= mem["heap_bytes"] < HEAP_ALLOC + 256


def test_board_interface(tiny_elf):
    board = get_board("qemu-an386")
    assert isinstance(board, QemuBoard) and board.target == "cortex-m4" and board.platform == "qemu"
    ok, why = board.available()
    assert ok, why
    res = board.run(tiny_elf, timeout_s=30)
    assert res.exit_code == 7 and res.board == "qemu-an386"
    assert res.lines[0]["event"] == "hello" and res.lines[-1] == {"event": "done", "status": 7}
    assert res.instructions["training"] - res.instructions["collection"] == 2 * (K_TRAINING - K_COLLECTION)
    assert res.cycles is None
    assert res.versions["qemu"] == qemu_version()
    assert board.timeout_for(1e9) == timeout_for(1e9)


def test_marker_symbol_and_plugin_cache(tiny_elf):
    syms = elf_symbols(tiny_elf)
    assert syms["plat_phase_marker"] & 1  # Thumb
    assert marker_address(tiny_elf) == syms["plat_phase_marker"] & ~1
    assert ensure_plugin() == ensure_plugin() and ensure_plugin().is_file()


def test_plugin_builds_into_a_fresh_cache(tmp_path):
    require_tools()
    lib = ensure_plugin(cache_dir=tmp_path)
    assert lib.is_file() and lib.parent.parent == tmp_path
    assert ensure_plugin(cache_dir=tmp_path) == lib  # cached: not rebuilt
    assert lib.stat().st_mtime_ns == ensure_plugin(cache_dir=tmp_path).stat().st_mtime_ns


def test_missing_qemu_is_reported(monkeypatch):
    monkeypatch.setenv("MICROTL_QEMU", "qemu-system-arm-not-installed")
    ok, why = QemuBoard().available()
    assert not ok and "make setup" in why


def test_hung_firmware_is_killed(tmp_path):
    require_tools()
    src = tmp_path / "hang.c"
    src.write_text(HANG)
    elf = compile_m4([src], tmp_path / "hang.elf")
    start = time.monotonic()
    with pytest.raises(FirmwareTimeout) as info:
        get_board("qemu-an386").run(elf, timeout_s=1.0)
    assert time.monotonic() - start < 10.0  # killed at the 1 s bound (room for QEMU's start on a loaded machine)
    assert info.value.board == "qemu-an386" and info.value.timeout_s == 1.0
    assert '"hello"' in info.value.partial_output
    assert len(info.value.markers) == 1


def test_fault_is_reported(tmp_path):
    require_tools()
    src = tmp_path / "fault.c"
    src.write_text(FAULT)
    run = run_elf(compile_m4([src], tmp_path / "fault.elf"), timeout=30)
    fault = run.events()[-1]
    assert fault["event"] == "fault" and int(fault["ipsr"], 16) == 3  # HardFault
    assert run.exit_status == 128 + 3


def test_timeout_for():
    assert timeout_for(0) >= 5.0
    small, big = timeout_for(1e8), timeout_for(1e11)
    assert big > small and big >= 1e11 / 1e9  # never faster than 1 G instructions/s
    with pytest.raises(ValueError):
        timeout_for(-1)
