"""The phases of one adaptation, in order: the words every room uses for when a cost is spent.

collection (int8 inference up to the cut, each feature stored), training (the head learns), evaluation (the
validation harness scores the test set: not the deployed device's work). The firmware marks phase i's begin and end
with phase markers 2i and 2i + 1; the QEMU insn-count plugin (firmware/qemu_plugin/insncount.c) only counts markers
and names no phase, its Python side (blocks.py) maps them through PHASES.
"""
from __future__ import annotations

PHASES = ("collection", "training", "evaluation")
# the phases the paper's op-count model prices (the device's work; evaluation is the validation harness's)
DEVICE_PHASES = PHASES[:2]
