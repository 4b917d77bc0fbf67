"""Emulator map: CPI and power fitted from timed runs, our firmware's prediction on the nRF52840, sources, bad files."""
import json
import shutil
from dataclasses import replace

import pytest

from cost_models import load_board, predict
from cost_models.microtl_dse.emulator_map import (MAP_FILE, EmulatorMapError, PlatformDelta, TimedRun, clear_map_cache, fit_cpi,
                                      fit_map, fit_power, load_emulator_map, map_path, read_map, report, timed_runs,
                                      write_map)
from cost_models.microtl_dse.fit import load_firmware_calibration
from vocabulary.configuration import Configuration

BOARD = load_board("nrf52840dk")
CONFIG = Configuration("digits", "digits_cnn", "conv2", 8, 60, 10)
# Whether the shipped qemu-an386 records carry the static cycle estimate (campaigns run since it was recorded do):
# then the map prices collection and evaluation by it ("estimated"), else by the training CPI ("assumed").
ESTIMATED = bool(load_firmware_calibration("qemu-an386").cycles_estimate)
UNTIMED = "estimated" if ESTIMATED else "assumed"


# --- the fit on synthetic records with a known CPI -----------------------------------------------------------------

def synthetic(cpi: float, power_w: float, noise=(0.0,) * 6) -> list[TimedRun]:
    runs = []
    for i, (n, e) in enumerate(zip(range(100, 700, 100), noise)):
        instructions = 2.7e6 * n
        seconds = instructions * cpi / 64e6 * (1 + e)
        runs.append(TimedRun(f"r{i}", "task", n, instructions, seconds, seconds * power_w * 1e3))
    return runs


def test_cpi_and_power_recovered_from_exact_records():
    m = fit_map(synthetic(1.42, 0.0195), BOARD, instructions_source="synthetic", inputs={})
    assert m.phases["training"].cpi == pytest.approx(1.42, rel=1e-12)
    assert m.phases["training"].power_w == pytest.approx(0.0195, rel=1e-12)
    assert all(abs(r.rel_error) < 1e-12 and r.record_cpi == pytest.approx(1.42) for r in m.residuals)
    assert m.power_check["board_w"] == pytest.approx(0.021)  # 7 mA x 3 V, the board file
    assert m.power_check["rel_difference"] == pytest.approx(0.0195 / 0.021 - 1)


def test_cpi_fit_minimises_relative_residuals():
    noise = (0.05, -0.05, 0.02, -0.02, 0.0, 0.01)
    runs = synthetic(2.0, 0.021, noise)
    cpi = fit_cpi([r.instructions for r in runs], [r.seconds for r in runs], 64e6)
    r = [1 / (2.0 * (1 + e)) for e in noise]  # I / (t f) per record
    assert cpi == pytest.approx(sum(r) / sum(x * x for x in r))
    loss = lambda c: sum((c * x - 1) ** 2 for x in r)  # noqa: E731
    assert loss(cpi) < min(loss(cpi * 1.001), loss(cpi * 0.999))
    m = fit_map(runs, BOARD, instructions_source="synthetic", inputs={})
    for res, e in zip(m.residuals, noise):
        assert res.rel_error == pytest.approx(cpi / 64e6 * res.instructions / res.measured_s - 1)
        assert res.record_cpi == pytest.approx(2.0 * (1 + e))


def test_flagged_records_are_reported_not_fitted():
    runs = synthetic(1.5, 0.021)
    runs[2] = replace(runs[2], seconds=runs[2].seconds * 3, flag="typo")
    m = fit_map(runs, BOARD, instructions_source="synthetic", inputs={})
    assert m.phases["training"].cpi == pytest.approx(1.5)
    assert m.residuals[2].flagged and m.residuals[2].rel_error == pytest.approx(1 / 3 - 1)
    assert "FLAGGED, not fitted: typo" in report(m)
    with pytest.raises(ValueError, match="no usable timed training record"):
        fit_map([replace(r, flag="x") for r in runs], BOARD, instructions_source="s", inputs={})


def test_phases_without_records_or_estimate_are_labelled_assumed_with_board_power():
    m = fit_map(synthetic(1.7, 0.021), BOARD, instructions_source="synthetic", inputs={})
    train = m.phases["training"]
    assert (train.cpi_status, train.power_status) == ("fitted", "fitted")
    for phase in ("collection", "evaluation"):
        p = m.phases[phase]
        assert p.cpi == train.cpi and p.cpi_status == "assumed" and "no timed nrf52840dk record" in p.cpi_source
        assert p.power_w == pytest.approx(0.024)  # the board file's inference current 8 mA x 3 V
    assert m.phases["collection"].power_status == "board" and m.phases["evaluation"].power_status == "assumed"
    assert any("absorbs the difference" in n for n in m.notes)


def test_fit_inputs_are_checked():
    for bad in (([], []), ([1.0], [1.0, 2.0]), ([0.0], [1.0]), ([1.0], [-1.0])):
        with pytest.raises(ValueError):
            fit_cpi(*bad, 64e6)
    with pytest.raises(ValueError):
        fit_power([], [])


# --- the shipped map: fitted on Table III ----------------------------------------------------------------------------

def test_shipped_map_is_fitted_on_table3_and_current():
    m = load_emulator_map(BOARD)
    assert not m.stale, m.stale  # refit with: dse calibrate --board nrf52840dk --refit
    runs = timed_runs(BOARD)
    assert len(runs) == 12 and {r.task for r in runs} == {"har3b", "cifar3"}
    assert [r.run for r in runs if r.flag] == ["table3-cifar3-500"]  # the published typo (32 s vs 35 s by energy)
    usable = [r for r in runs if not r.flag]
    cpi = fit_cpi([r.instructions for r in usable], [r.seconds for r in usable], 64e6)
    assert m.phases["training"].cpi == pytest.approx(cpi)
    assert 1.0 < cpi < 3.0  # a Cortex-M4's cycles per instruction, wait states and all
    assert max(abs(r.rel_error) for r in m.residuals if not r.flagged) < 0.10
    assert m.power_check["rel_difference"] == pytest.approx(0, abs=0.01)  # Table III energy / time = 7 mA x 3 V
    assert m.platform is not None and 0 < m.platform.ram_bytes < 4096 and 0 < m.platform.flash_bytes < 4096


# --- our firmware on the nRF52840 ------------------------------------------------------------------------------------

def test_default_prices_our_firmware_ram_and_flash_as_the_emulator_model():
    m = load_emulator_map(BOARD)
    nrf = predict(CONFIG, "nrf52840dk", test_inputs=50)
    qemu = predict(CONFIG, "qemu-an386", test_inputs=50)
    assert nrf.firmware == "microtl-dse"
    assert {k: v for k, v in nrf.ram.items() if k != "platform"} == qemu.ram
    assert {k: v for k, v in nrf.flash.items() if k != "platform"} == qemu.flash
    assert nrf.ram["platform"] == m.platform.ram_bytes and nrf.flash["platform"] == m.platform.flash_bytes
    assert nrf.ram_total == qemu.ram_total + m.platform.ram_bytes
    assert nrf.flash_total == qemu.flash_total + m.platform.flash_bytes
    assert nrf.instructions == qemu.instructions


def test_time_is_instructions_times_cpi_over_64_mhz_and_energy_time_times_power():
    m = load_emulator_map(BOARD)
    nrf = predict(CONFIG, "nrf52840dk", test_inputs=50)
    assert nrf.phases_included == ("collection", "training", "evaluation")
    for phase, cost in nrf.phases.items():
        pm = m.phases[phase]
        assert pm.cpi_status == ("fitted" if phase == "training" else UNTIMED)
        cycles = nrf.cycles_estimate[phase] if pm.estimated else nrf.instructions[phase] * pm.cpi
        assert cost.cycles == pytest.approx(cycles) and cost.seconds == pytest.approx(cycles / 64e6)
        assert cost.energy_mj == pytest.approx(cost.seconds * m.phases[phase].power_w * 1e3)
        assert pm.cpi_status in cost.source
        assert ("static Cortex-M4 estimate" if pm.estimated else "qemu-an386 firmware calibration") in cost.source
    assert nrf.latency_s == pytest.approx(sum(c.seconds for c in nrf.phases.values()))
    # a study's device does not evaluate: without test inputs the phase is not priced
    assert "evaluation" not in predict(CONFIG, "nrf52840dk").phases


def test_prediction_says_which_figure_came_from_which_source():
    p = predict(CONFIG, "nrf52840dk")
    assert "qemu-an386 firmware calibration" in p.sources["ram"] and "platform layer" in p.sources["ram"]
    assert p.sources["cpi.training"].startswith("fitted: Table III")
    assert p.sources["cpi.collection"].startswith(UNTIMED)
    assert p.sources["power.training"].startswith("fitted: Table III energy") and "board file" in p.sources[
        "power.collection"]
    assert any("microtl-dse" in n and "fitted on Table III training time" in n for n in p.notes)
    assert any("microtl-dse" in n and ("collection: our firmware's static Cortex-M4 cycle estimate" if ESTIMATED
                                       else "collection: CPI assumed equal to training's") in n for n in p.notes)
    d = p.to_dict()
    assert d["firmware"] == "microtl-dse" and "time.collection_s" in d and d["phases_uncalibrated"] == ""


def test_paper_firmware_model_is_unchanged_and_labelled():
    paper = predict(CONFIG, "nrf52840dk", firmware="paper")
    assert paper.firmware == "paper" and paper.phases_included == ("training",)
    assert "optimizer_state" in paper.ram and "platform" not in paper.ram
    assert any("published-firmware model" in n for n in paper.notes)
    with pytest.raises(ValueError, match="unknown firmware 'ours'"):
        predict(CONFIG, "nrf52840dk", firmware="ours")


def test_emulated_board_ignores_the_map():
    assert predict(CONFIG, "qemu-an386").phases_included == ()


# --- bad files: one error naming the file and key -------------------------------------------------------------------

@pytest.fixture
def map_copy(tmp_path):
    """A board whose calibration directory holds a copy of the shipped map and records (synthetic board file)."""
    boards, cal = tmp_path / "boards", tmp_path / "calibration" / "nrf52840dk"
    boards.mkdir()
    shutil.copytree(BOARD.calibration_dir, cal)
    shutil.copy(BOARD.path, boards / "nrf52840dk.toml")
    clear_map_cache()
    yield load_board(boards / "nrf52840dk.toml"), cal / MAP_FILE
    clear_map_cache()


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["phases"]["training"].update(cpi=-1), r"phases\.training: key cpi must be a number > 0"),
    (lambda d: d["phases"]["collection"].pop("power_w"), r"phases\.collection: missing key power_w"),
    (lambda d: d["phases"]["training"].update(cpi_status="guessed"), r"phases\.training: key cpi_status is 'guessed'"),
    (lambda d: d.update(version=99), r"key version is 99, expected one of 1, 2"),
    (lambda d: d["phases"]["collection"].update(cpi_status="estimated", cpi=1.5),
     r"phases\.collection: key cpi must be null for an estimated phase"),
    (lambda d: d["phases"]["collection"].update(cpi_status="estimated", cpi=None) or d.update(version=1),
     r"phases\.collection: key cpi_status 'estimated' is format 2"),
    (lambda d: d.update(clock_hz="fast"), r"key clock_hz has the wrong type"),
    (lambda d: d.update(board="other"), r"key board is 'other'"),
    (lambda d: d["phases"].pop("evaluation"), r"phases: missing key evaluation"),
])
def test_bad_map_file_names_file_and_key(map_copy, edit, message):
    board, path = map_copy
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(EmulatorMapError, match=message) as exc:
        predict(CONFIG, board)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_unreadable_map_and_missing_map(map_copy):
    board, path = map_copy
    path.write_text("{not json")
    with pytest.raises(EmulatorMapError, match=f"{path}: not valid JSON"):
        read_map(path)
    path.unlink()
    assert predict(CONFIG, board).firmware == "paper"  # no map: the op-count model of the board's records
    with pytest.raises(EmulatorMapError, match="has no emulator map"):
        predict(CONFIG, board, firmware="microtl-dse")


def test_written_map_round_trips_and_stale_inputs_are_said(map_copy):
    board, path = map_copy
    m = fit_map(synthetic(1.6, 0.021), board, instructions_source="synthetic",
                inputs={"paper_table3.csv": "0" * 64},
                platform=PlatformDelta(1096, 620, ("probe",), "gcc", "2026-01-01"))
    write_map(m, path)
    back = load_emulator_map(board)
    assert back.phases == m.phases and back.residuals == m.residuals and back.platform == m.platform
    assert any("paper_table3.csv changed" in s for s in back.stale)
    assert "STALE" in report(back)
    assert any("emulator map stale" in n for n in predict(CONFIG, board).notes)
    assert map_path(board) == path and load_firmware_calibration("qemu-an386").board == "qemu-an386"


def test_calibrate_report_says_which_figure_came_from_which_source(capsys, tmp_path):
    from dse.cli import main

    assert main(["calibrate", "--board", "nrf52840dk", "--report", "--plots", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    untimed = ("collection  cycles = the static Cortex-M4 estimate", "estimated: per configuration",
               "static estimate vs Table III", "collection (static cycle estimate) and evaluation") if ESTIMATED else \
        ("collection  CPI", "assumed", "collection (CPI assumed) and evaluation")
    for text in ("instructions: predicted by the qemu-an386 firmware calibration", "training    CPI",
                 "fitted: Table III time", "power check (training)",
                 "table3-cifar3-500", "FLAGGED", "absorbs the difference", "platform layer",
                 "leave one shape out (a Table III task", "leave one run out", "cycles.training",
                 "energy.training", "no timed run", *untimed):
        assert text in out, text
    assert (tmp_path / "residuals-map-shape.png").stat().st_size > 0
    assert (tmp_path / "residuals-map-run.png").stat().st_size > 0
    assert main(["calibrate", "--board", "nrf52840dk", "--out", "x.json"]) == 2
    assert "give --refit too" in capsys.readouterr().err
