"""Prediction: what one configuration costs on one board (RAM, flash, time, energy, and the BLE alternative).

`predict` validates and counts; the pure predictors on counts are `price` (the op-count model fitted on the
board's own records: on nrf52840dk, Table III of the paper, i.e. the *paper's* firmware), `price_emulated` (our
firmware on an instructions-only board) and `price_mapped` (our firmware on a real board: the emulator's
instruction, RAM and flash models through the board's emulator map, cost_models.microtl_dse.emulator_map). Which firmware a
real board's prediction prices is `firmware`: "microtl-dse" (ours, the one `dse validate` builds; the default
where the board has an emulator map) or "paper" (the published firmware's Table III fit, what `dse paper`
regenerates). Phases without calibration are reported as uncalibrated (None) rather than guessed; totals sum the
calibrated phases and name them; every prediction says which figure came from which source (`sources`, notes).
"""
from __future__ import annotations

from dataclasses import replace

from cost_models.board import BoardSpec, load_board
from cost_models.microtl_dse.emulator_map import emulator_calibration, load_emulator_map, map_or_none
from cost_models.microtl_dse.fit import load_firmware_calibration
from cost_models.microtl_dse.model import estimated_best_epoch
from cost_models.microtl_dse.price import price_emulated, price_mapped
from cost_models.paper.calibration import Calibration, load_calibration
from cost_models.paper.price import check_paper_mode, price
from cost_models.pricing import Prediction
from cost_models.workload import Workload, workload_from_config
from vocabulary.configuration import Configuration

FIRMWARES = ("microtl-dse", "paper")  # whose firmware a real board's prediction prices


def predict(
    config: Configuration,
    board: str | BoardSpec = "nrf52840dk",
    epochs_run: float | None = None,
    *,
    classes: int | None = None,
    calibration: Calibration | None = None,
    test_inputs: int = 0,
    best_epoch: float | None = None,
    firmware_calibration=None,
    firmware: str | None = None,
    emulator_map=None,
) -> Prediction:
    """Cost of `config` on `board`. `epochs_run` (default: config.epochs) is the mean number of epochs actually
    run, e.g. under early stopping; `classes` overrides the task's class count (npz tasks); `calibration`
    defaults to the board's (fitted once per process).

    Instructions-only boards (qemu-an386) are priced by the firmware model (microtl_dse.fit): instructions per phase,
    RAM and flash of this project's deployed image (the validation harness's share apart: harness_ram /
    harness_flash). There `test_inputs` is the evaluation's test inputs (streamed by the harness, not stored) and `best_epoch` the epoch of the best weights (default: estimated from epochs_run and patience);
    `firmware_calibration` overrides the board's fitted one (e.g. a refit).

    Real boards: `firmware` "microtl-dse" prices our firmware (RAM and flash from the emulator's firmware model plus
    the measured platform layer, time and energy = predicted instructions x CPI / clock x power, from the board's
    emulator map, `emulator_map` overriding the file); "paper" prices the published firmware with the op-count
    model fitted on the board's records. Default: "microtl-dse" where the board has an emulator map, else "paper".

    Streaming (config.mode): RAM without the sample store, training priced by the steps' counts; the prediction
    adds the cost per collected sample (`sample_latency_s`, `sample_instructions`). The paper's firmware has no
    streaming mode: ValueError naming `mode`."""
    board = board if isinstance(board, BoardSpec) else load_board(board)
    epochs = float(config.epochs if epochs_run is None else epochs_run)
    if not 0 < epochs <= config.epochs:
        raise ValueError(f"epochs_run must be in (0, {config.epochs}] (the configuration's budget), got {epochs_run!r}")
    workload = workload_from_config(config, classes)
    return per_sample(_predict(config, board, epochs, workload, calibration, test_inputs, best_epoch,
                               firmware_calibration, firmware, emulator_map), workload)


def _predict(config: Configuration, board: BoardSpec, epochs: float, workload: Workload, calibration, test_inputs: int,
             best_epoch: float | None, firmware_calibration, firmware: str | None, emulator_map) -> Prediction:
    if board.instructions_only:
        if firmware not in (None, "microtl-dse"):
            raise ValueError(f"board {board.name} runs this project's firmware only (firmware {firmware!r} is "
                             f"priced on real boards)")

        best = estimated_best_epoch(epochs, config.epochs, config.patience) if best_epoch is None else best_epoch
        return price_emulated(workload, board, firmware_calibration or load_firmware_calibration(board), epochs,
                              test_inputs, best)
    if firmware is None:  # the default: ours where the board has an emulator map

        emulator_map = emulator_map or map_or_none(board)
        firmware = "microtl-dse" if emulator_map is not None else "paper"
    if firmware not in FIRMWARES:
        raise ValueError(f"unknown firmware {firmware!r}; one of: {', '.join(FIRMWARES)}")
    if firmware == "paper":
        check_paper_mode(workload)
        cal = calibration or load_calibration(board)
        p = price(workload, board, cal, epochs)
        return replace(p, notes=(*p.notes, PAPER_NOTE.format(files=", ".join(cal.files))))

    m = emulator_map or load_emulator_map(board)
    best = estimated_best_epoch(epochs, config.epochs, config.patience) if best_epoch is None else best_epoch
    return price_mapped(workload, board, m, firmware_calibration or emulator_calibration(m), epochs, test_inputs,
                        best)


def per_sample(p: Prediction, w: Workload) -> Prediction:
    """The prediction with its mode and, in streaming, what one collected sample costs: (collection + training) / N
    in time (where both phases are timed) and in predicted instructions (our firmware)."""
    if not w.streaming:
        return replace(p, mode=w.mode)
    phases = ("collection", "training")
    seconds = [p.phases[q].seconds for q in phases if q in p.phases]
    insns = [p.instructions.get(q) for q in phases]
    return replace(p, mode=w.mode,
                   sample_latency_s=sum(seconds) / w.samples if len(seconds) == 2 and None not in seconds else None,
                   sample_instructions=sum(insns) / w.samples if None not in insns else None)


PAPER_NOTE = ("published-firmware model (firmware \"paper\"): RAM, flash and cycles of the op-count model fitted on "
              "{files} (on nrf52840dk: Table III of Profentzas et al., the paper's CMSIS-NN firmware), not on this "
              "project's firmware")
