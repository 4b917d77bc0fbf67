"""Our firmware's predictors: on an instructions-only board (the emulator: instructions, RAM, flash) and on a real board
(the emulator's firmware calibration through the board's emulator map: time and energy from CPI and power per phase).
"""
from __future__ import annotations

from cost_models.board import BoardSpec
from cost_models.microtl_dse.fit import price_firmware
from cost_models.pricing import PhaseCost, Prediction
from cost_models.radio import ble_upload
from cost_models.workload import Workload
from vocabulary.phases import DEVICE_PHASES


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

