"""Cycle *estimates* for firmware run on the emulated Cortex-M4 (qemu-an386): a static per-instruction timing from
the Cortex-M4 Technical Reference Manual, summed per translated block and weighted by the block execution counts
the QEMU plugin recorded in each phase.

QEMU has no timing model, so these are estimates, never measurements. Sources (ARM DDI 0439B, Cortex-M4 TRM r0p1):
section 3.3.1 "Cortex-M4 instructions" (Table 3-1, cycle counts of the integer instruction set), section 3.3.2
"Load/store timings" (pipelining of neighbouring loads and stores) and section 7.2.3 "FPU instruction set" (Table 7-1,
cycle counts of the FPU instructions). Assumptions (TimingModel, stated in docs/firmware.md):

- zero wait-state memory (true of the MPS2's SSRAM that mps2-an386 models), no interrupts, no bus contention;
- P, the pipeline refill after a taken branch or a write to the PC, is 1-3 cycles in the TRM (target alignment and
  width, early address speculation); TimingModel.refill_cycles = 2 is used;
- SDIV/UDIV take 2-12 cycles depending on the operands (early termination); divide_cycles = 7 (the middle) is used;
- barrier completion (B in "1+B") is 0; MRS/MSR cost 2; anything not in the tables costs 1 (rare, listed by
  `unclassified` so it can be checked);
- the load/store pipelining rule of 3.3.2 applies inside a block only (not across block boundaries);
- a conditional branch ending a block is taken in a phase as often as the block ran minus the entries, in the same
  phase, into blocks starting at its fall-through address (every fall-through entry is attributed to the branch
  not being taken: exact when the fall-through block has no other way in, which holds for loop exits and if-bodies;
  otherwise it under-counts taken branches). Unconditional branches and other PC writes are always taken.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import capstone
from capstone import arm
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from .qemu_plugin.blocks import BlockKey, BlockProfile, instructions_of

SOURCE = "ARM DDI 0439B (Cortex-M4 TRM) Table 3-1, 3.3.2 and Table 7-1"
LABEL = "estimate, static CM4 timing"


class CycleEstimateError(RuntimeError):
    """The ELF's code does not match what QEMU executed (a block cannot be disassembled as recorded)."""


@dataclass(frozen=True)
class TimingModel:
    """The free parameters of the static timing (the TRM gives ranges for these)."""

    refill_cycles: int = 2  # P: pipeline refill after a taken branch, 1-3 in the TRM
    divide_cycles: int = 7  # SDIV/UDIV: 2-12 in the TRM, by the operands' leading zeros/ones
    pipelined_loads: bool = True  # TRM 3.3.2: an LDR/STR after an LDR loses a cycle

    def describe(self) -> str:
        return (f"{SOURCE}; zero wait states; branch refill P={self.refill_cycles}; divide {self.divide_cycles} "
                f"cycles (TRM: 2-12); conditional branches taken = block runs - fall-through entries")


DEFAULT_MODEL = TimingModel()


@dataclass(frozen=True)
class InsnCost:
    """Cycles of one instruction: `cycles` when it does not branch (or always, for an unconditional PC write, the
    refill included), plus `taken_penalty` when a conditional one is taken."""

    cycles: int
    taken_penalty: int = 0
    conditional_branch: bool = False
    kind: str = "alu"


# --- the timing table --------------------------------------------------------------------------------------------

# Table 3-1, one cycle each: multiply MUL; long multiply (and accumulate) UMULL, SMULL, UMLAL, SMLAL, UMAAL (one cycle
# on the M4, unlike the M3); the DSP multiplies and MACs SMULxy, SMLAxy, SMULWy, SMLAWy, SMLAD, SMLSD, SMUAD, SMUSD,
# SMMUL, SMMLA, SMMLS, SMLALxy, SMLALD, SMLSLD.
_MUL_1 = {"mul", "umull", "smull", "umlal", "smlal", "umaal",
          "smulbb", "smulbt", "smultb", "smultt", "smulwb", "smulwt",
          "smlabb", "smlabt", "smlatb", "smlatt", "smlawb", "smlawt",
          "smlad", "smladx", "smlsd", "smlsdx", "smuad", "smuadx", "smusd", "smusdx",
          "smmul", "smmulr", "smmla", "smmlar", "smmls", "smmlsr",
          "smlalbb", "smlalbt", "smlaltb", "smlaltt", "smlald", "smlaldx", "smlsld", "smlsldx"}
_MUL_2 = {"mla", "mls"}  # Table 3-1: multiply-accumulate / -subtract, 2
_DIV = {"sdiv", "udiv"}
# single loads (Table 3-1: 2, pipelined per 3.3.2); exclusive loads/stores pipeline exactly like LDR (3.3.2)
_LOAD_1 = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrt", "ldrbt", "ldrht", "ldrsbt", "ldrsht",
           "ldrex", "ldrexb", "ldrexh", "strex", "strexb", "strexh"}
_STORE_1 = {"str", "strb", "strh", "strt", "strbt", "strht"}
_DOUBLE = {"ldrd", "strd"}  # 3: never pipelined with neighbours, the two words pipelined together (3.3.2)
_MULTIPLE = {"ldm", "ldmdb", "ldmia", "stm", "stmdb", "stmia", "push", "pop"}  # 1+N (+P if PC is loaded)
_BRANCH = {"b", "bl", "bx", "blx"}  # 1+P when taken, 1 when a conditional one is not
_CBZ = {"cbz", "cbnz"}  # 1+P taken, 1 not taken
_TABLE_BRANCH = {"tbb", "tbh"}  # 2+P
_SYSTEM_2 = {"mrs", "msr"}
_ONE = {"it", "nop", "hint", "dmb", "dsb", "isb", "wfi", "wfe", "sev", "yield", "bkpt", "svc", "cpsid", "cpsie",
        "clrex", "udf"}

# Table 7-1 (FPU, single precision): VADD VSUB VMUL VNMUL VABS VNEG VCMP(E) VCVT(R/B/T) VMOV VMRS VMSR 1;
# VMLA VMLS VNMLA VNMLS VFMA VFMS VFNMA VFNMS 3; VDIV VSQRT 14; VLDR VSTR 2; VLDM VSTM VPUSH VPOP 1+N.
_FP_1 = {"vadd", "vsub", "vmul", "vnmul", "vabs", "vneg", "vcmp", "vcmpe", "vcvt", "vcvtr", "vcvtb", "vcvtt",
         "vcvta", "vcvtn", "vcvtp", "vcvtm", "vmrs", "vmsr", "fmstat", "fconsts", "fconstd"}
_FP_3 = {"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"}
_FP_14 = {"vdiv", "vsqrt"}
_FP_MULTIPLE = {"vldmia", "vldmdb", "vstmia", "vstmdb", "vpush", "vpop", "vldm", "vstm"}
_FP_SINGLE = {"vldr", "vstr"}
# integer data processing, 1 cycle (+P with the PC as destination): Table 3-1 "ALU operations", shifts, bit-field,
# extend, reverse, saturate, pack, parallel arithmetic
_ALU = {"adc", "add", "addw", "adr", "and", "asr", "bic", "cmn", "cmp", "eor", "lsl", "lsr", "mov", "movw", "movt",
        "mvn", "neg", "orn", "orr", "ror", "rrx", "rsb", "sbc", "sub", "subw", "teq", "tst", "clz", "rbit", "rev",
        "rev16", "revsh", "bfc", "bfi", "sbfx", "ubfx", "sxtb", "sxth", "uxtb", "uxth", "sxtab", "sxtah", "uxtab",
        "uxtah", "sxtb16", "uxtb16", "sxtab16", "uxtab16", "ssat", "usat", "ssat16", "usat16", "pkhbt", "pkhtb",
        "sel", "usad8", "usada8", "qadd", "qsub", "qdadd", "qdsub", "sadd16", "sadd8", "ssub16", "ssub8", "uadd16",
        "uadd8", "usub16", "usub8", "qadd16", "qadd8", "qsub16", "qsub8", "uqadd16", "uqadd8", "uqsub16", "uqsub8",
        "shadd16", "shadd8", "shsub16", "shsub8", "uhadd16", "uhadd8", "uhsub16", "uhsub8", "sasx", "ssax", "uasx",
        "usax", "qasx", "qsax", "uqasx", "uqsax", "shasx", "shsax", "uhasx", "uhsax"}


def _disassembler():
    md = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    md.detail = True
    return md


def disassemble(code: bytes, address: int, count: int = 0) -> list:
    """Thumb-2 (M-profile, with the FPU) capstone instructions of `code` placed at `address` (at most `count`)."""
    return list(_disassembler().disasm(code, address, count))


# Operands are read from capstone's text (op_str): its register names are consistent, and reading the detail
# structure through the Python binding costs ~100 us per instruction. Only a PC write's condition code uses it.

def _operands(insn) -> list[str]:
    """Top-level operands of the assembly text ("r0", "[r1, #4]", "{r4, pc}", ...)."""
    out, depth, cur = [], 0, ""
    for ch in insn.op_str:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _first(insn) -> str:
    ops = _operands(insn)
    return ops[0].rstrip("!") if ops else ""


def _inside(insn, open_: str, close: str) -> list[str]:
    text = insn.op_str
    if open_ not in text:
        return []
    body = text[text.index(open_) + 1:text.index(close, text.index(open_))]
    return [t.strip() for t in body.split(",") if t.strip()]


def _address_registers(insn) -> set[str]:
    """Registers that form the address of a load/store (base and index inside the brackets)."""
    return {t.rstrip("!") for t in _inside(insn, "[", "]") if not t.startswith("#") and " " not in t}


def _has_register_offset(insn) -> bool:
    return len(_address_registers(insn)) > 1


def _n_words(registers: list[str]) -> int:
    """Words a register list moves (a D register is two)."""
    return sum(2 if r.startswith("d") else 1 for r in registers)


def _loads_pc(insn, name: str) -> bool:
    if name in _MULTIPLE:
        return name in ("pop", "ldm", "ldmia", "ldmdb") and "pc" in _inside(insn, "{", "}")
    return _first(insn) == "pc"


def _is_conditional(insn) -> bool:
    return insn.cc not in (arm.ARM_CC_AL, arm.ARM_CC_INVALID)


def insn_cost(insn, prev=None, model: TimingModel = DEFAULT_MODEL) -> InsnCost:
    """Static cycles of one capstone instruction (Thumb-2, M-profile); `prev` is the instruction before it in the
    same block, for the load/store pipelining of TRM 3.3.2."""
    name, p = insn.insn_name(), model.refill_cycles

    def branch(base: int, kind: str) -> InsnCost:  # a PC write: +P when it happens
        if _is_conditional(insn):
            return InsnCost(base, p, True, kind)
        return InsnCost(base + p, 0, False, kind)

    if name in _BRANCH:
        return branch(1, "branch")
    if name in _CBZ:
        return InsnCost(1, p, True, "branch")
    if name in _TABLE_BRANCH:
        return branch(2, "branch")
    if name in _MULTIPLE:
        n = len(_inside(insn, "{", "}"))
        return branch(1 + n, "load/store multiple") if _loads_pc(insn, name) else \
            InsnCost(1 + n, kind="load/store multiple")
    if name in _LOAD_1 or name in _STORE_1:
        if name in _LOAD_1 and _loads_pc(insn, name):  # LDR PC: 2+P, blocking, never pipelined
            return branch(2, "branch")
        store = name in _STORE_1
        cycles = 1 if store and not _has_register_offset(insn) else 2  # 3.3.2: STR Rx,[Ry,#imm] is always 1
        if model.pipelined_loads and cycles == 2 and prev is not None:
            prev_name = prev.insn_name()
            if prev_name in _LOAD_1 and not _loads_pc(prev, prev_name) and \
                    _first(prev) not in _address_registers(insn):  # its loaded register is not our address
                cycles = 1
        return InsnCost(cycles, kind="store" if store else "load")
    if name in _DOUBLE:
        return InsnCost(3, kind="load/store double")
    if name in _MUL_1:
        return InsnCost(1, kind="multiply")
    if name in _MUL_2:
        return InsnCost(2, kind="multiply")
    if name in _DIV:
        return InsnCost(model.divide_cycles, kind="divide")
    if name in _FP_14:
        return InsnCost(14, kind="fp divide/sqrt")
    if name in _FP_3:
        return InsnCost(3, kind="fp multiply-accumulate")
    if name in _FP_SINGLE:  # VLDR/VSTR: 2 (a D register moves two words: 3)
        return InsnCost(1 + _n_words([_first(insn)]), kind="fp load/store")
    if name in _FP_MULTIPLE:
        return InsnCost(1 + _n_words(_inside(insn, "{", "}")), kind="fp load/store multiple")
    if name == "vmov":  # core <-> FP register, FP <-> FP, immediate: 1; two core registers <-> two S / one D: 2
        return InsnCost(2 if len(_operands(insn)) >= 3 else 1, kind="fp move")
    if name in _FP_1:
        return InsnCost(1, kind="fp")
    if name in _SYSTEM_2:
        return InsnCost(2, kind="system")
    pc = _first(insn) == "pc" and name not in ("cmp", "cmn", "tst", "teq")
    if name in _ALU or name in _ONE:
        if pc:  # data processing with the PC as destination: 1+P
            return branch(1, "branch")
        return InsnCost(1, kind="alu")
    return InsnCost(1 + (p if pc else 0), kind="unclassified")


# --- blocks ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockTiming:
    """Static cycles of one translated block."""

    key: BlockKey
    fallthrough: int  # address after the last instruction (where a not-taken branch continues)
    cycles: int  # every instruction, the last one not branching (or branching always, if unconditional)
    taken_penalty: int  # extra cycles when its conditional last instruction branches
    conditional_exit: bool
    mnemonics: tuple[str, ...]
    unclassified: tuple[str, ...] = ()



def block_timing(insns: list, key: BlockKey, model: TimingModel = DEFAULT_MODEL) -> BlockTiming:
    """Sum of the instructions' cycles. Only the last instruction's branch counts as conditional (QEMU ends a block
    at every branch); a conditional PC write before it (none expected) is costed as not taken."""
    cycles = penalty = 0
    conditional = False
    unclassified = []
    prev = None
    for i, insn in enumerate(insns):
        cost = insn_cost(insn, prev, model)
        cycles += cost.cycles
        if cost.kind == "unclassified":
            unclassified.append(insn.insn_name())
        if i == len(insns) - 1 and cost.conditional_branch:
            penalty, conditional = cost.taken_penalty, True
        prev = insn
    fallthrough = insns[-1].address + insns[-1].size if insns else key[0]
    text = tuple(f"{x.mnemonic} {x.op_str}".strip() for x in insns)
    return BlockTiming(key, fallthrough, cycles, penalty, conditional, text, tuple(unclassified))


@dataclass
class CodeImage:
    """The ELF's executable sections: (start address, bytes)."""

    sections: list[tuple[int, bytes]]

    @classmethod
    def from_elf(cls, elf: str | Path) -> "CodeImage":
        with open(elf, "rb") as fh:
            f = ELFFile(fh)
            found = [(s["sh_addr"], s.data()) for s in f.iter_sections()
                     if s["sh_flags"] & SH_FLAGS.SHF_EXECINSTR and s["sh_type"] == "SHT_PROGBITS" and s["sh_size"]]
        return cls(found)

    def read(self, start: int, end: int) -> bytes | None:
        for base, data in self.sections:
            if base <= start and end <= base + len(data):
                return data[start - base:end - base]
        return None


def disassemble_block(image: CodeImage, key: BlockKey, md=None) -> list:
    """The block's instructions; raises CycleEstimateError when the bytes at its address do not decode into the
    instruction count QEMU recorded, ending at its recorded end address. The recorded end may be 2 bytes late:
    near the end of a (1 KB) guest page QEMU peeks at the next halfword to see whether an instruction would
    cross the page, and the plugin API counts those bytes into the last instruction's size."""
    start, n, end = key
    code = image.read(start, end)
    if code is None:
        raise CycleEstimateError(f"block 0x{start:08x}-0x{end:08x} is outside the ELF's code sections")
    insns = list((md or _disassembler()).disasm(code, start, n))
    last_end = insns[-1].address + insns[-1].size if insns else start
    if len(insns) != n or last_end not in (end, end - 2):
        raise CycleEstimateError(f"block 0x{start:08x} ({n} instructions to 0x{end:08x}) decodes as {len(insns)} "
                                 f"instructions to 0x{last_end:08x}")
    return insns


def time_blocks(image: CodeImage, keys, model: TimingModel = DEFAULT_MODEL) -> dict[BlockKey, BlockTiming]:
    md = _disassembler()
    return {key: block_timing(disassemble_block(image, key, md), key, model) for key in keys}


# --- phases ------------------------------------------------------------------------------------------------------

@dataclass
class PhaseEstimate:
    cycles: int  # estimate
    instructions: int  # executions x instructions of the blocks (equals the plugin's exact count)
    taken_conditional: int  # conditional branches estimated taken
    conditional: int  # conditional branches executed

    @property
    def cpi(self) -> float:
        return self.cycles / self.instructions if self.instructions else float("nan")


def phase_estimate(timings: dict[BlockKey, BlockTiming], counts: dict[BlockKey, int]) -> PhaseEstimate:
    """Weight the blocks' static cycles by their executions in one phase; conditional exits by the fall-through
    rule (module docstring)."""
    entries: dict[int, int] = {}
    for key, c in counts.items():
        entries[key[0]] = entries.get(key[0], 0) + c
    cycles = 0
    by_exit: dict[tuple[int, int], int] = {}  # (fall-through address, penalty) -> executions of conditional exits
    for key, c in counts.items():
        t = timings[key]
        cycles += c * t.cycles
        if t.conditional_exit:
            by_exit[(t.fallthrough, t.taken_penalty)] = by_exit.get((t.fallthrough, t.taken_penalty), 0) + c
    taken = conditional = 0
    for (fallthrough, penalty), c in by_exit.items():
        t_c = c - min(c, entries.get(fallthrough, 0))
        taken, conditional = taken + t_c, conditional + c
        cycles += t_c * penalty
    return PhaseEstimate(cycles, instructions_of(counts), taken, conditional)


@dataclass
class CycleEstimate:
    """Estimated cycles per phase of one run, with what they rest on."""

    phases: dict[str, PhaseEstimate]
    model: TimingModel = DEFAULT_MODEL
    unclassified: dict[str, int] = field(default_factory=dict)  # mnemonic -> executions costed at the default 1

    @property
    def cycles(self) -> dict[str, int]:
        return {phase: e.cycles for phase, e in self.phases.items()}

    def seconds_at(self, clock_hz: float) -> dict[str, float]:
        return {phase: e.cycles / clock_hz for phase, e in self.phases.items()}

    def describe(self) -> str:
        return f"{LABEL}: {self.model.describe()}"


def estimate_cycles(elf: str | Path, profile: BlockProfile, model: TimingModel = DEFAULT_MODEL, *,
                    spans: dict | None = None) -> CycleEstimate:
    """Estimated cycles of each phase of the run `profile` recorded, for the ELF that ran (spans: which markers
    bound each phase, firmware.protocol.marker_spans; default stored mode's)."""
    per_phase = profile.phase_counts(spans)
    keys = set().union(*per_phase.values()) if per_phase else set()
    timings = time_blocks(CodeImage.from_elf(elf), keys, model)
    unclassified: dict[str, int] = {}
    for counts in per_phase.values():
        for key, c in counts.items():
            for name in timings[key].unclassified:
                unclassified[name] = unclassified.get(name, 0) + c
    return CycleEstimate({phase: phase_estimate(timings, counts) for phase, counts in per_phase.items()}, model,
                         unclassified)
