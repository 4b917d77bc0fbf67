"""The qemu-an386 cycle estimate: the Cortex-M4 timing table on assembled instructions, block sums, the
branch-taken rule, the plugin's per-block counts against its exact instruction counts, and a firmware run."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from qemu_fw_util import compile_m4, require_tools

from firmware.boards.qemu import EMULATED_CLOCK_HZ, QemuBoard, run_elf
from firmware.cycle_estimate import TimingModel, block_timing, disassemble, estimate_cycles, insn_cost, phase_estimate
from firmware.qemu_plugin.blocks import BlockFileError, instructions_of, parse_blocks
from vocabulary.validation_record import Measured, ValidationRecord

P = TimingModel().refill_cycles


def assemble(tmp_path: Path, body: str, address: int = 0x1000) -> list:
    """Assemble Thumb-2 + FPv4 lines with arm-none-eabi-as and disassemble the .text bytes with capstone."""
    require_tools()
    from elftools.elf.elffile import ELFFile

    src, obj = tmp_path / "snippet.s", tmp_path / "snippet.o"
    src.write_text(".syntax unified\n.thumb\n.text\n" + body.strip() + "\n")
    proc = subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
                           "-mthumb", str(src), "-o", str(obj)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with open(obj, "rb") as fh:
        code = ELFFile(fh).get_section_by_name(".text").data()
    insns = disassemble(code, address)
    assert len(insns) == len([ln for ln in body.strip().splitlines() if ln.strip()])
    return insns


def costs(insns, model=TimingModel()):
    out, prev = [], None
    for insn in insns:
        c = insn_cost(insn, prev, model)
        out.append((c.cycles, c.taken_penalty, c.conditional_branch))
        prev = insn
    return out


def test_integer_timings(tmp_path):
    insns = assemble(tmp_path, """
        add r0, r1, r2
        mul r0, r1, r2
        mla r0, r1, r2, r3
        mls r0, r1, r2, r3
        smull r0, r1, r2, r3
        umlal r0, r1, r2, r3
        smlabb r0, r1, r2, r3
        smlad r0, r1, r2, r3
        sdiv r0, r1, r2
        udiv r0, r1, r2
        ldrd r0, r1, [r2]
        strd r0, r1, [r2]
        push {r4, r5, r6, r7, lr}
        ldm r0!, {r1, r2, r3}
        ubfx r0, r1, #2, #3
        movw r0, #1234
    """)
    div = TimingModel().divide_cycles
    assert [c[0] for c in costs(insns)] == [1, 1, 2, 2, 1, 1, 1, 1, div, div, 3, 3, 6, 4, 1, 1]
    assert all(not c[2] for c in costs(insns))
    assert costs(insns, TimingModel(divide_cycles=12))[8][0] == 12


def test_load_store_pipelining(tmp_path):
    # TRM 3.3.2: an LDR/STR right after an LDR loses a cycle unless its address uses the loaded register;
    # STR with an immediate offset is always 1; nothing pipelines after a store
    insns = assemble(tmp_path, """
        add r7, r7, #1
        ldr r0, [r1]
        ldr r2, [r3]
        ldr r4, [r2]
        str r0, [r1, #4]
        str r0, [r1, r2]
        ldr r5, [r6]
        str r0, [r1, r2]
        ldrsb r4, [r5, #1]
        ldrb r4, [r6], #1
        ldrh r3, [r6], #2
    """)
    assert [c[0] for c in costs(insns)] == [1, 2, 1, 2, 1, 2, 2, 1, 2, 1, 1]
    assert [c[0] for c in costs(insns, TimingModel(pipelined_loads=False))] == [1, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2]


def test_fpu_timings(tmp_path):
    insns = assemble(tmp_path, """
        vadd.f32 s0, s1, s2
        vsub.f32 s0, s1, s2
        vmul.f32 s0, s1, s2
        vmla.f32 s0, s1, s2
        vfma.f32 s0, s1, s2
        vdiv.f32 s0, s1, s2
        vsqrt.f32 s0, s1
        vldr s0, [r0, #4]
        vstr s0, [r0]
        vldr d0, [r0]
        vpush {s16, s17, s18, s19}
        vpop {d8, d9}
        vldmia r0!, {s0, s1, s2}
        vmov r0, s0
        vmov s0, r0
        vmov r0, r1, d0
        vmov.f32 s0, #1.0
        vcvt.f32.s32 s0, s0
        vcmp.f32 s0, s1
        vmrs APSR_nzcv, fpscr
        vneg.f32 s0, s0
    """)
    assert [c[0] for c in costs(insns)] == [1, 1, 1, 3, 3, 14, 14, 2, 2, 3, 5, 5, 4, 1, 1, 2, 1, 1, 1, 1, 1]


def test_branch_timings(tmp_path):
    insns = assemble(tmp_path, """
        b.w 1f
        1: bne 1b
        bl 1b
        bx lr
        cbz r0, 2f
        nop
        2: tbb [r0, r1]
        pop {r4, pc}
        ldr pc, [sp], #4
        mov pc, lr
        it eq
        bxeq lr
    """)
    assert costs(insns) == [(1 + P, 0, False), (1, P, True), (1 + P, 0, False), (1 + P, 0, False), (1, P, True),
                            (1, 0, False), (2 + P, 0, False), (1 + 2 + P, 0, False), (2 + P, 0, False),
                            (1 + P, 0, False), (1, 0, False), (1, P, True)]
    assert insn_cost(insns[0], None, TimingModel(refill_cycles=3)).cycles == 4
    assert insn_cost(insns[5]).kind == "alu"  # nop (capstone: "hint") is in the table, not unclassified


def test_block_sum_and_branch_rule(tmp_path):
    # a counted loop: A sets up, L is the loop body ending in a backward bne, X follows the loop
    insns = assemble(tmp_path, """
        movs r2, #0
        movs r3, #10
        ldr r1, [r0], #4
        adds r2, r2, r1
        subs r3, r3, #1
        bne 1f
        1: bx lr
    """, address=0x100)
    a, loop, x = insns[:2], insns[2:6], insns[6:]
    key = lambda seq: (seq[0].address, len(seq), seq[-1].address + seq[-1].size)  # noqa: E731
    ta, tl, tx = block_timing(a, key(a)), block_timing(loop, key(loop)), block_timing(x, key(x))
    assert (ta.cycles, ta.conditional_exit) == (2, False)
    assert (tl.cycles, tl.taken_penalty, tl.conditional_exit, tl.fallthrough) == (2 + 1 + 1 + 1, P, True, x[0].address)
    assert (tx.cycles, tx.conditional_exit) == (1 + P, False)
    timings = {t.key: t for t in (ta, tl, tx)}
    # the branch target here is the fall-through itself; pretend the loop jumps back: 10 runs, 1 exit
    counts = {ta.key: 1, tl.key: 10, tx.key: 1}
    est = phase_estimate(timings, counts)
    assert est.instructions == 2 + 10 * 4 + 1
    assert (est.conditional, est.taken_conditional) == (10, 9)
    assert est.cycles == 2 + 10 * 5 + 9 * P + (1 + P)
    # a fall-through block with more entries than the branch ran: none counted taken (the stated lower bound)
    est2 = phase_estimate(timings, {tl.key: 3, tx.key: 5})
    assert est2.taken_conditional == 0 and est2.cycles == 3 * 5 + 5 * (1 + P)


def test_block_file_parsing():
    # block lines after a header belong to that header's snapshot (cumulative counts, only those that changed)
    text = ("marker 100\nblock 0x10 2 0x14 5\nblock 0x20 3 0x26 1\nmarker 140\nblock 0x10 2 0x14 25\n"
            "marker 150\nmarker 159\nblock 0x20 3 0x26 4\ntotal 170\nblock 0x30 1 0x32 1\n")
    prof = parse_blocks(text)
    assert [s.kind for s in prof.snapshots] == ["marker"] * 4 + ["total"]
    counts = prof.phase_counts()
    assert counts == {"collection": {(0x10, 2, 0x14): 20}, "training": {(0x20, 3, 0x26): 3}}
    assert instructions_of(counts["collection"]) == 40 and prof.phase_instructions()["collection"] == 40
    assert instructions_of(counts["training"]) == 9 == prof.phase_instructions()["training"]
    assert prof.total.instructions == 170 and prof.total.counts[(0x30, 1, 0x32)] == 1
    with pytest.raises(BlockFileError, match=r"<blocks>:2: unexpected line"):
        parse_blocks("marker 1\nblock 0x10 zwei 0x14 5\n")


# --- on the emulated board -----------------------------------------------------------------------------------------

PROGRAM = r"""
#include <stdint.h>
#include <string.h>
#include "platform.h"

volatile int8_t a[256], b[256];
volatile float fa[64];
volatile int32_t sink;
volatile float fsink;

/* an int8 dot product (loads + MAC, as the int8 kernels) */
__attribute__((noinline)) static int32_t dot(int n)
{
    int32_t acc = 0;
    for (int i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

/* float multiply-add and a division (as the trainer) */
__attribute__((noinline)) static float fmix(int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += fa[i & 63] * 0.5f + (float)i / 3.0f;
    return s;
}

int main(void)
{
    plat_init();
    for (int i = 0; i < 256; i++) { a[i] = (int8_t)(i * 7); b[i] = (int8_t)(i * 13); }
    for (int i = 0; i < 64; i++) fa[i] = (float)i;
    plat_phase_marker(0);
    for (int r = 0; r < 40; r++) sink = dot(256);
    plat_phase_marker(1);
    plat_phase_marker(2);
    for (int r = 0; r < 20; r++) fsink = fmix(200);
    plat_phase_marker(3);
    plat_phase_marker(4);
    sink = dot(256);
    plat_phase_marker(5);
    plat_write("{\"event\":\"done\",\"status\":0}\n", 28);
    return 0;
}
"""


@pytest.fixture(scope="module")
def program_elf(tmp_path_factory):
    require_tools()
    d = tmp_path_factory.mktemp("cycles")
    src = d / "prog.c"
    src.write_text(PROGRAM)
    return compile_m4([src], d / "prog.elf")


@pytest.fixture(scope="module")
def program_runs(program_elf):
    return run_elf(program_elf, timeout=30, blocks=True), run_elf(program_elf, timeout=30, blocks=True)


def test_block_counts_reproduce_exact_instruction_counts(program_elf, program_runs):
    run, again = program_runs
    assert run.exit_status == 0 and run.blocks is not None
    phases = run.phase_instructions
    assert set(phases) == {"collection", "training", "evaluation"} and all(v > 1000 for v in phases.values())
    per_phase = run.blocks.phase_counts()
    # executions x block sizes = the plugin's exact per-phase instruction counts (counts file and block file)
    assert {p: instructions_of(c) for p, c in per_phase.items()} == phases
    assert run.blocks.phase_instructions() == phases
    assert run.blocks.total.instructions == run.total_instructions
    # deterministic, and per-block counting does not change the instruction counts
    assert again.blocks.snapshots == run.blocks.snapshots
    plain = run_elf(program_elf, timeout=30)
    assert (plain.markers, plain.total_instructions, plain.blocks) == (run.markers, run.total_instructions, None)


def test_estimate_on_the_emulated_board(program_elf, program_runs):
    run = program_runs[0]
    est = estimate_cycles(program_elf, run.blocks)
    assert est.unclassified == {}
    for phase, e in est.phases.items():
        assert e.instructions == run.phase_instructions[phase]
        # every instruction costs at least 1 cycle in the TRM tables, and these loops have loads (2), taken
        # branches (1+P) and, in training, a VDIV (14) per iteration: above 1 cycle per instruction; nothing in
        # them costs more than 3 per instruction on average (one 14-cycle VDIV per ~10+ instructions)
        assert e.instructions < e.cycles < 3 * e.instructions, (phase, e)
    # the fall-through rule on loops (gcc -O2 emits bottom-tested loops, not unrolled): each inner loop's closing
    # branch is taken 255 of 256 (199 of 200) times, the outer loop's 39 of 40 (19 of 20)
    coll = est.phases["collection"]
    assert coll.taken_conditional == 40 * 255 + 39
    assert est.phases["training"].taken_conditional == 20 * 199 + 19
    assert est.phases["evaluation"].taken_conditional == 255
    assert est.phases["training"].cpi > coll.cpi  # the VDIV and VMLA-free float chain cost more per instruction
    # the evaluation phase runs dot() once, collection 40 times: cycles scale with it (same blocks)
    assert 35 < coll.cycles / est.phases["evaluation"].cycles < 45


def test_board_result_and_record_label_the_estimate(program_elf):
    from dse.commands.validation import validation_table

    result = QemuBoard().run(program_elf, timeout_s=30)
    assert set(result.cycles_estimate) == {"collection", "training", "evaluation"}
    assert result.cycles_estimate_source.startswith("estimate")
    assert result.seconds_estimate["training"] == pytest.approx(result.cycles_estimate["training"]
                                                               / EMULATED_CLOCK_HZ)
    assert result.cycles is None  # nothing is presented as measured cycles
    assert result.versions["cycle_estimate"].startswith("capstone ")
    plain = QemuBoard(estimate_cycles=False).run(program_elf, timeout_s=30)
    assert plain.instructions == result.instructions and plain.cycles_estimate is None  # not estimated
    m = Measured(instructions={k: v for k, v in result.instructions.items()}, cycles_estimate=result.cycles_estimate,
                 cycles_estimate_source=result.cycles_estimate_source, seconds_estimate=result.seconds_estimate,
                 seconds_estimate_source=result.seconds_estimate_source)
    record = ValidationRecord(study="s", trial=1, board="qemu-an386", status="ok", measured=m)
    assert ValidationRecord.from_dict(record.to_dict()) == record
    table = validation_table([record])
    assert "cycles training (estimate, static CM4 timing)" in table
    assert "time training (estimate, s)" in table and "estimated cycles at 25 MHz" in table
    assert "cycle estimate: estimate" in table
    # an old record without the new keys still reads
    old = record.to_dict()
    for k in ("cycles_estimate", "cycles_estimate_source", "seconds_estimate", "seconds_estimate_source"):
        del old["measured"][k]
    assert ValidationRecord.from_dict(old).measured.cycles_estimate is None


def test_block_timing_rejects_code_that_does_not_match(program_elf, program_runs):
    from firmware.cycle_estimate import CodeImage, CycleEstimateError, disassemble_block

    image = CodeImage.from_elf(program_elf)
    key = max(program_runs[0].blocks.phase_counts()["collection"], key=lambda k: k[1])
    assert len(disassemble_block(image, key)) == key[1]
    with pytest.raises(CycleEstimateError, match="decodes as"):
        disassemble_block(image, (key[0], key[1] + 1, key[2]))
    with pytest.raises(CycleEstimateError, match="outside the ELF"):
        disassemble_block(image, (0x1000_0000, 1, 0x1000_0002))
