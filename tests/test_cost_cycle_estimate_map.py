"""The static Cortex-M4 cycle estimate as calibration data: qemu-an386 rows carry it per phase, the firmware fit
predicts it from the same counts as the instructions, and the nRF52840 emulator map prices the phases without timed
board records by it (DK records and Table III still win where they exist). Older files still load.

The fit runs on tests/data/qemu_runs_cycles_estimate.csv: 14 real digits_cnn runs on qemu-an386 (campaign path,
2026-12-06), every cut, hidden 0/8/32, batch 1-8, N 30-200, 2-6 epochs."""
import csv
import json
from pathlib import Path

import pytest

from cost_models import load_board, predict
from cost_models.microtl_dse.emulator_map import (
    MAP_FILE,
    TimedRun,
    build_map,
    clear_map_cache,
    fit_map,
    load_emulator_map,
    read_map,
    report,
    write_map,
)
from cost_models.microtl_dse.fit import (
    ESTIMATE_COSTS,
    fit_firmware,
    price_firmware,
    read_firmware_calibration,
    save_firmware_calibration,
)
from cost_models.microtl_dse.fit_error import cross_validate, summarize
from cost_models.microtl_dse.runs import RunRecordError, load_runs
from cost_models.workload import workload_from_config
from firmware.calibrate import rows_from_validation
from firmware.run_records import append_rows
from vocabulary.configuration import Configuration
from vocabulary.validation_record import Measured, Provenance, ValidationRecord

FIXTURE = Path(__file__).parent / "data" / "qemu_runs_cycles_estimate.csv"
BOARD = load_board("nrf52840dk")
CONFIG = Configuration("digits", "digits_cnn", "conv2", 8, 60, 10)
SOURCE = ("estimate, static CM4 timing: ARM DDI 0439B (Cortex-M4 TRM) Table 3-1, 3.3.2 and Table 7-1; zero wait "
          "states; branch refill P=2; divide 7 cycles (TRM: 2-12)")


@pytest.fixture(scope="module")
def runs():
    return load_runs(FIXTURE)


@pytest.fixture(scope="module")
def cal(runs):
    return fit_firmware(runs, "qemu-an386", files=(FIXTURE.name,), digest="f" * 64)


def record(estimate: dict | None) -> ValidationRecord:
    config = Configuration(task="digits", model="digits_cnn", cut="pool2", hidden=8, samples=40, epochs=3, batch=8)
    return ValidationRecord(
        study="s", trial=3, board="qemu-an386", status="ok", configuration=config.to_dict(),
        provenance=Provenance(sources_sha256="c" * 64, elf_sha256="d" * 64, toolchain="gcc",
                              board_versions={"qemu": "QEMU 7.2"}, date_utc="2026-12-06T00:00"),
        measured=Measured(epochs_run=3, best_epoch=2, improvements=2, test=178, flash_bytes=30000,
                          static_ram_bytes=30000, stack_bytes=400, heap_bytes=0, peak_ram_bytes=30400,
                          instructions={"collection": 10**6, "training": 2 * 10**6, "evaluation": 3 * 10**6},
                          cycles_estimate=estimate, cycles_estimate_source=SOURCE if estimate else None))


# --- rows -------------------------------------------------------------------------------------------------------------

def test_rows_carry_the_estimate_labelled_and_round_trip(tmp_path):
    estimate = {"collection": 1_430_000, "training": 3_020_000, "evaluation": 4_310_000}
    rows = rows_from_validation(record(estimate), source="validation:s/trial-3")
    est = [r for r in rows if r["metric"] == "cycles_estimate"]
    assert {r["phase"]: r["value"] for r in est} == estimate
    assert all(r["unit"] == "cycles (estimate)" and r["emulator"] == f"QEMU 7.2; {SOURCE}" for r in est)
    assert all(r["emulator"] == "QEMU 7.2" for r in rows if r["metric"] != "cycles_estimate")
    path = tmp_path / "v.csv"
    append_rows(path, rows)
    back = [r for r in load_runs(path) if r.metric == "cycles_estimate"]
    assert {r.phase: r.value for r in back} == estimate and {r.cost for r in back} == set(ESTIMATE_COSTS)
    # a record without an estimate (older, or the estimate failed) gives the rows it always gave
    plain = rows_from_validation(record(None), source="validation:s/trial-3")
    assert [r["metric"] for r in plain] == [r["metric"] for r in rows if r["metric"] != "cycles_estimate"]
    # the unit says it is an estimate: a row claiming plain cycles is refused, naming file, line and column
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text().replace("cycles (estimate)", "cycles", 1))
    with pytest.raises(RunRecordError, match=r"bad.csv, line \d+, column unit: cycles_estimate is in cycles"):
        load_runs(bad)


# --- the fit --------------------------------------------------------------------------------------------------------

def test_fit_predicts_the_estimate_like_the_instructions(runs, cal):
    assert cal.estimate_runs == 14 and "zero wait states" in cal.estimate_source
    for phase in ("collection", "training", "evaluation"):
        assert any(s == "fitted" for s in cal.cycles_estimate_status[phase].values())
        lo, mean, hi = cal.estimate_cpi[phase]
        assert 1.2 < lo <= mean <= hi < 2.2  # int8 kernels and the float head: 1.4-1.9 cycles per instruction
    in_sample = [abs(price_firmware(cal, workload_from_config(r.config, r.classes), r.epochs_run, r.test,
                                    r.copies).cost(r.cost) / r.value - 1)
                 for r in runs if r.metric == "cycles_estimate"]
    assert len(in_sample) == 42 and max(in_sample) < 0.002
    cv = {e.cost: e for e in summarize(cross_validate(runs, "qemu-an386"), ESTIMATE_COSTS)}
    assert cv["cycles_estimate.collection"].n == 14 and cv["cycles_estimate.collection"].worst < 1e-3
    assert cv["cycles_estimate.evaluation"].worst < 1e-3
    assert cv["cycles_estimate.training"].n == 14 and cv["cycles_estimate.training"].worst < 0.03


def test_records_without_estimates_fit_as_before(tmp_path, runs):
    old = tmp_path / "old.csv"
    with FIXTURE.open(newline="") as src, old.open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(r for r in reader if r["metric"] != "cycles_estimate")
    without = fit_firmware(load_runs(old), "qemu-an386")
    assert without.cycles_estimate == {} and without.estimate_runs == 0
    assert any("no estimate records" in n for n in without.notes)
    p = price_firmware(without, workload_from_config(CONFIG, 3), 10, 50, 8)
    assert all(v is None for v in p.cycles_estimate.values()) and all(p.instructions.values())
    assert without.instructions == fit_firmware(runs, "qemu-an386").instructions  # the estimate changes nothing


def test_snapshot_keeps_the_estimate_and_version_2_still_reads(tmp_path, cal):
    path = tmp_path / "cal.json"
    save_firmware_calibration(cal, path)
    back = read_firmware_calibration(path)
    assert back.cycles_estimate == cal.cycles_estimate and back.estimate_shape_factors == cal.estimate_shape_factors
    data = json.loads(path.read_text())
    for key in ("cycles_estimate", "cycles_estimate_status", "estimate_shape_factors", "estimate_cpi",
                "estimate_source", "estimate_runs"):
        del data[key]
    path.write_text(json.dumps({**data, "version": 2}))
    v2 = read_firmware_calibration(path)
    assert v2.cycles_estimate == {} and v2.instructions == cal.instructions


# --- the map ---------------------------------------------------------------------------------------------------------

def table3_like(cpi: float) -> list[TimedRun]:
    return [TimedRun(f"r{n}", "task", n, 2.7e6 * n, 2.7e6 * n * cpi / 64e6, 2.7e6 * n * cpi / 64e6 * 21.0)
            for n in range(100, 700, 100)]


def test_untimed_phases_are_priced_by_the_estimate_and_timed_ones_win():
    estimates = {"collection": "the estimate model", "evaluation": "the estimate model"}
    m = fit_map(table3_like(1.7), BOARD, instructions_source="s", inputs={}, estimates=estimates)
    assert m.phases["training"].cpi == pytest.approx(1.7) and m.phases["training"].cpi_status == "fitted"
    for phase in ("collection", "evaluation"):
        p = m.phases[phase]
        assert (p.cpi, p.cpi_status, p.estimated) == (None, "estimated", True)
        assert p.cpi_source.startswith("the estimate model") and "static Cortex-M4 estimate" in p.source
        assert p.power_w == pytest.approx(0.024)  # the board file's, as before
    # a DK-timed collection run of our firmware wins over the estimate; an estimate never replaces Table III
    dk = TimedRun("validation:s/trial-1", "digits", 60, 1e7, 1e7 * 1.3 / 64e6, None, phase="collection",
                  source="validation:s/trial-1")
    m2 = fit_map([*table3_like(1.7), dk], BOARD, instructions_source="s", inputs={},
                 estimates={**estimates, "training": "the estimate model"})
    assert m2.phases["collection"].cpi == pytest.approx(1.3) and m2.phases["collection"].cpi_status == "fitted"
    assert m2.phases["training"].cpi_status == "fitted" and m2.phases["evaluation"].estimated


def test_map_prices_collection_by_the_fitted_estimate(cal):
    m = build_map(BOARD, fw_cal=cal)
    assert m.version == 2 and m.phases["collection"].estimated and m.phases["evaluation"].estimated
    assert m.phases["training"].cpi_status == "fitted" and "Table III" in m.phases["training"].cpi_source
    assert "14 runs' per-block execution counts x Cortex-M4 TRM timing" in m.phases["collection"].cpi_source
    assert any(n.startswith("static estimate vs Table III (training, 11 records)") for n in m.notes)
    p = predict(CONFIG, BOARD, test_inputs=50, emulator_map=m, firmware_calibration=cal)
    fw = price_firmware(cal, workload_from_config(CONFIG, 3), 10, 50, 10)
    for phase in ("collection", "evaluation"):
        assert p.phases[phase].cycles == pytest.approx(p.cycles_estimate[phase])
        assert p.phases[phase].cycles == pytest.approx(fw.cycles_estimate[phase])  # N x the frozen pass: no epochs
        assert p.phases[phase].seconds == pytest.approx(p.cycles_estimate[phase] / 64e6)
        assert 1.2 < p.phases[phase].cycles / p.instructions[phase] < 2.2
        assert "static Cortex-M4 estimate" in p.phases[phase].source
    assert p.phases["training"].cycles == pytest.approx(p.instructions["training"] * m.phases["training"].cpi)
    assert p.sources["cpi.collection"].startswith("estimated: per configuration")
    assert any("collection, evaluation: our firmware's static Cortex-M4 cycle estimate" in n for n in p.notes)
    text = report(m)
    assert "collection  cycles = the static Cortex-M4 estimate" in text
    assert f"training    CPI {m.phases['training'].cpi:.4g} (fitted: Table III time" in text
    assert 1.4 < m.phases["training"].cpi < 1.8  # Table III's time over our firmware's training instructions


def test_format_1_map_still_loads_and_says_refit(tmp_path, cal):
    """A map written before the estimate (format 1: collection assumed at the training CPI) prices as it did and is
    reported stale; the written format 2 map round-trips."""
    import shutil

    import cost_models.board as board_module

    root = tmp_path / "cm"
    (root / "boards").mkdir(parents=True)
    for name in ("nrf52840dk", "qemu-an386"):
        shutil.copy(load_board(name).path, root / "boards" / f"{name}.toml")
        shutil.copytree(load_board(name).calibration_dir, root / "calibration" / name)
    mp = pytest.MonkeyPatch()
    mp.setattr(board_module, "BOARDS_DIR", root / "boards")
    clear_map_cache()
    try:
        board = load_board("nrf52840dk")
        m = build_map(board, fw_cal=cal)
        path = write_map(m, root / "calibration" / "nrf52840dk" / MAP_FILE)
        assert read_map(path).phases == m.phases
        old = fit_map(table3_like(1.7), board, instructions_source="s", inputs={})
        data = {**old.to_dict(), "version": 1}
        path.write_text(json.dumps(data))
        back = load_emulator_map(board)
        assert back.version == 1 and back.phases["collection"].cpi_status == "assumed"
        assert any(s.startswith("format 1: fitted before") for s in back.stale)
        p = predict(CONFIG, board, test_inputs=50)
        assert p.phases["collection"].cycles == pytest.approx(p.instructions["collection"] * 1.7)
        assert any("emulator map stale: format 1" in n for n in p.notes)
    finally:
        mp.undo()
        clear_map_cache()


def test_calibrate_report_shows_the_estimate_error(tmp_path, capsys):
    from dse.cli import main

    records = tmp_path / "records"
    records.mkdir()
    (records / "campaign.csv").write_text(FIXTURE.read_text())
    assert main(["calibrate", "--board", "qemu-an386", "--refit", "--report", "--records", str(records),
                 "--plots", str(tmp_path / "plots"), "--quiet"]) == 0
    out = capsys.readouterr().out
    for text in ("static Cortex-M4 cycle estimate per count (fitted the same way on 14 runs' estimates",
                 "estimated CPI of the runs", "cycles_estimate.collection   14", "cycles_estimate.training     14",
                 "cycles_estimate: the static Cortex-M4 estimate, not a measurement"):
        assert text in out, text
    assert (tmp_path / "plots" / "residuals-cv.png").stat().st_size > 1000
