"""The calibration run record's schema: what our firmware measured on a board, one row per run and metric, with
provenance - written by firmware (firmware/run_records.py: the campaign, imported validation records) and read by
cost_models (cost_models/microtl_dse/runs.py: the instruction, memory and emulator-map fits). Plain data, standard library only.

A row carries the configuration that produced it (model, cut, head, N, epochs run, batch, test inputs), its derived
counts (feature size, head parameters and MACs) so a row can be read without the code, one metric (`METRICS`) and
its provenance (`PROVENANCE_COLUMNS`: source, firmware sources sha256, ELF sha256, toolchain, emulator, date). A run's
`key` (`run_key`) identifies its configuration so a resumed campaign skips what is already measured.
"""
from __future__ import annotations

from .configuration import Configuration

METRICS = {  # metric -> (unit, needs a phase)
    "instructions": ("insns", True),
    "peak_ram": ("B", False),  # static RAM of the validation ELF + stack high-water + heap high-water
    "flash": ("B", False),  # allocated sections with contents, from the validation ELF
    "static_ram": ("B", False),
    "stack": ("B", False),
    # the deployed image (its own ELF, no harness, no stored inputs): what studies price and the memory models fit
    "deployed_ram": ("B", False),  # its static RAM + the validation run's stack and heap high-water marks
    "deployed_flash": ("B", False),
    "harness_ram": ("B", False),  # the validation harness's share: validation ELF - deployed ELF
    "harness_flash": ("B", False),
    # real boards (nrf52840dk validations: the emulator map's own records)
    "cycles": ("cycles", True),  # DWT->CYCCNT per phase
    "energy_nj": ("nJ", True),  # PPK2: run-average current x supply x phase time
    # qemu-an386: the static Cortex-M4 cycle estimate (firmware/cycle_estimate.py: per-block execution counts x
    # TRM timing), an estimate, never a measurement; the estimate's assumptions are in the row's emulator column
    "cycles_estimate": ("cycles (estimate)", True),
}
ESTIMATE_METRICS = ("cycles_estimate",)  # rows whose provenance names the estimate (`make_rows`' estimate_source)
CONFIG_COLUMNS = ("task", "model", "cut", "hidden", "classes", "samples", "epochs", "patience", "batch", "momentum",
                  "scheme", "test", "epochs_run", "best_epoch", "improvements", "restore_best", "mode", "replay")
# not in files written before the firmware reported them: improvements read as unknown, restore_best as 1 (the
# firmware always restored the best weights then), mode as stored with replay 0 (before streaming existed)
OPTIONAL_COLUMNS = {"improvements": "", "restore_best": "1", "mode": "stored", "replay": "0"}
# optional columns a row cannot lose without reading back as another configuration (append_rows adds them)
CONFIGURING_COLUMNS = ("restore_best", "mode", "replay")
COUNT_COLUMNS = ("feature", "head_params", "head_macs")  # derived; checked on load
PROVENANCE_COLUMNS = ("source", "sources_sha256", "elf_sha256", "toolchain", "emulator", "date")
COLUMNS = ("key", "board", *CONFIG_COLUMNS, *COUNT_COLUMNS, "metric", "phase", "value", "unit", *PROVENANCE_COLUMNS)


class RunRecordError(ValueError):
    """A run-record file with a missing column or a bad value."""


def run_key(config: Configuration, classes: int, test: int) -> str:
    """Identifies a measured configuration (what the firmware was built from, up to the sample draw)."""
    c = config
    mode = f"/streaming-r{c.replay}" if c.streaming else ""  # before /t: the campaign matches keys up to the test
    return (f"{c.task}/{c.model}/{c.cut}/h{c.hidden}/c{classes}/n{c.samples}/e{c.epochs}/p{c.patience}/b{c.batch}"
            f"/m{c.momentum:g}/lr{c.lr:g}/{c.scheme}{mode}/t{test}{'' if c.restore_best else '/last'}")
