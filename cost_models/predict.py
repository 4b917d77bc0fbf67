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

from vocabulary.configuration import Configuration
from vocabulary.phases import DEVICE_PHASES

from cost_models.board import BoardSpec, load_board
from cost_models.paper.calibration import Calibration, load_calibration
from cost_models.microtl_dse.emulator_map import emulator_calibration, load_emulator_map, map_or_none
from cost_models.microtl_dse.fit import load_firmware_calibration, price_firmware
from cost_models.microtl_dse.model import estimated_best_epoch
from cost_models.pricing import PhaseCost, Prediction, check_paper_mode, price
from cost_models.radio import ble_upload
from cost_models.workload import Workload, workload_from_config

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

    Instructions-only boards (qemu-an386) are priced by the firmware model (firmware_fit): instructions per phase,
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


def price_mapped(w: Workload, board: BoardSpec, m, cal, epochs: float, test: int, best_epoch: float) -> Prediction:
    """Our firmware on a real board: instructions, RAM and flash from the emulator's firmware calibration `cal`,
    through the emulator map `m` (CPI and power per phase, the platform layer's bytes). The evaluation phase is
    priced only when there are test inputs (a study's device never evaluates: test 0)."""

    fw = price_firmware(cal, w, epochs, test, best_epoch)
    ram, flash = dict(fw.ram), dict(fw.flash)
    if m.platform is not None:
        ram["platform"] = m.platform.ram_bytes
        flash["platform"] = m.platform.flash_bytes
    phases: dict[str, PhaseCost] = {}
    notes: list[str] = []
    for phase in m.phases:
        if phase == "evaluation" and test <= 0:
            continue
        pm = m.phases[phase]
        instructions = fw.instructions.get(phase)
        estimate = fw.cycles_estimate.get(phase) if pm.estimated else None
        if instructions is None or (pm.cpi is None and estimate is None):
            why = (f"{cal.board} firmware calibration cannot predict its instructions" if instructions is None
                   else f"{cal.board} firmware calibration cannot predict its static cycle estimate ("
                        f"{'; '.join(n for n in fw.estimate_notes if n.startswith(phase)) or 'no estimate model'})"
                   if pm.estimated else f"no CPI for it in {m.board}'s emulator map ({pm.cpi_source})")
            phases[phase] = PhaseCost(None, None, None, why)
            notes.append(f"{phase} phase uncalibrated: {why}")
            continue
        if pm.estimated:  # our code's static Cortex-M4 estimate for this configuration (no CPI: it varies)
            c = estimate
            source = (f"{pm.source}; this configuration: {c / instructions:.3f} estimated cycles per predicted "
                      "instruction")
        else:
            c = instructions * pm.cpi
            source = f"instructions: {cal.board} firmware calibration (predicted); {pm.source}"
        seconds = c / board.clock_hz
        phases[phase] = PhaseCost(c, seconds, seconds * pm.power_w * 1e3, source=source)
    included = tuple(p for p, cost in phases.items() if cost.cycles is not None)
    sources, note = _mapped_texts(m, cal.board, board, tuple(phases), included)
    notes.append(note)
    if test <= 0:
        notes.append("no test inputs: the evaluation phase is not priced (a deployed device does not evaluate; "
                     "`dse validate` streams a test set from the host)")
    notes += [f"emulator map stale: {s}" for s in m.stale]
    ram_total, flash_total = sum(ram.values()), sum(flash.values())
    return Prediction(
        board=board.name, ram=ram, ram_total=ram_total, flash=flash, flash_total=flash_total, phases=phases,
        latency_s=sum(phases[p].seconds for p in included), energy_mj=sum(phases[p].energy_mj for p in included),
        phases_included=included, ble_upload=ble_upload(w.samples, w.input_elements, board),
        fits_ram=ram_total <= board.ram_bytes, fits_flash=flash_total <= board.flash_bytes,
        notes=(*notes, *fw.notes), instructions=fw.instructions, firmware="microtl-dse", sources=dict(sources),
        cycles_estimate=fw.cycles_estimate,
        harness_ram=fw.harness_ram, harness_flash=fw.harness_flash,
    )


_TEXTS: dict[tuple, tuple[dict[str, str], str]] = {}


def _mapped_texts(m, emulator: str, board: BoardSpec, phases: tuple[str, ...], included: tuple[str, ...]):
    """Which figure came from which source (the same for every configuration of a map: built once)."""
    key = (id(m), m.created, m.inputs.get("paper_table3.csv"), emulator, board.name, phases, included)
    if key in _TEXTS:
        return _TEXTS[key]
    platform = ("" if m.platform is None else f" + the {board.name} platform layer ({m.platform.ram_bytes:+d} B RAM, "
                f"{m.platform.flash_bytes:+d} B flash, measured by building both platforms)")
    sources = {
        "ram": f"our firmware's RAM model ({emulator} firmware calibration; same C code and nRF52840 memory "
               f"map){platform}",
        "flash": f"our firmware's flash model ({emulator} firmware calibration){platform}",
        "instructions": f"{emulator} firmware calibration (predicted retired instructions of our firmware)",
        **{f"cpi.{p}": f"{m.phases[p].cpi_status}: {m.phases[p].cpi_source}" for p in phases},
        **{f"power.{p}": f"{m.phases[p].power_status}: {m.phases[p].power_source}" for p in phases},
    }
    assumed = [p for p in included if m.phases[p].cpi_status == "assumed"]
    estimated = [p for p in included if m.phases[p].estimated]
    dk = [p for p in included if m.phases[p].cpi_status == "fitted" and "Table III" not in m.phases[p].cpi_source]
    t = m.phases["training"]
    note = (f"our firmware (\"microtl-dse\") on {board.name}: RAM/flash from the {emulator} firmware model"
            f"{' + measured platform layer' if m.platform else ''}; time = cycles / {board.clock_hz / 1e6:g} MHz; "
            f"training cycles = predicted instructions x CPI {t.cpi:.3g} ({t.cpi_status} on "
            f"{'Table III training time' if 'Table III' in t.cpi_source else 'DK-timed runs of our firmware'})"
            + (f"; {', '.join(p for p in dk if p != 'training')}: CPI fitted on DK-timed runs of our firmware"
               if [p for p in dk if p != "training"] else "")
            + (f"; {', '.join(estimated)}: our firmware's static Cortex-M4 cycle estimate (predicted per "
               f"configuration by the {emulator} cycles-estimate model; zero wait states, P=2; not timed on the "
               "board)" if estimated else "")
            + (f"; {', '.join(assumed)}: CPI assumed equal to training's" if assumed else "")
            + "; energy = time x phase power (training: Table III energy/time; collection: board file)")
    if len(_TEXTS) > 64:
        _TEXTS.clear()
    _TEXTS[key] = (sources, note)
    return sources, note


def price_emulated(w: Workload, board: BoardSpec, cal, epochs: float, test: int, best_epoch: float) -> Prediction:
    """An instructions-only board: predicted instructions per phase, RAM and flash; no time, energy or radio."""

    fw = price_firmware(cal, w, epochs, test, best_epoch)
    why = f"{board.name} has no clock: instructions only"
    return Prediction(
        board=board.name, ram=fw.ram, ram_total=fw.ram_total, flash=fw.flash, flash_total=fw.flash_total,
        phases={p: PhaseCost(None, None, None, why) for p in DEVICE_PHASES}, latency_s=0.0, energy_mj=0.0,
        phases_included=(), ble_upload=None, fits_ram=fw.ram_total <= board.ram_bytes,
        fits_flash=fw.flash_total <= board.flash_bytes, notes=(why, *fw.notes), instructions=fw.instructions,
        firmware="microtl-dse", sources={"ram": f"{board.name} firmware calibration", "flash":
                                         f"{board.name} firmware calibration", "instructions":
                                         f"{board.name} firmware calibration (predicted)"},
        cycles_estimate=fw.cycles_estimate,
        harness_ram=fw.harness_ram, harness_flash=fw.harness_flash,
    )
