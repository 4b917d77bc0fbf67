"""The emulator map learns from our own firmware timed on the board: nrf52840dk validation records (DWT cycles, PPK2
energy) imported by `dse calibrate --board nrf52840dk --add DIR` give each phase a fitted CPI and power in place of
the assumed ones; a bad import changes nothing. Records are synthetic (no DK here), built with known CPIs."""
import json
import shutil

import pytest

from cost_models import load_board, predict
from cost_models.microtl_dse.emulator_map import (
    MAP_FILE,
    RUNS_DIR,
    TABLE3_SOURCE,
    build_map,
    clear_map_cache,
    load_emulator_map,
    write_map,
)
from cost_models.microtl_dse.fit import load_firmware_calibration, price_firmware
from cost_models.microtl_dse.map_error import costs_of, cross_validate_map, timed_runs_of
from cost_models.workload import workload_from_config
from firmware.calibrate import timed_rows_from_validation
from firmware.records import write_record
from firmware.run_records import append_rows
from vocabulary.configuration import Configuration
from vocabulary.validation_record import Measured, Provenance, ValidationRecord

CPI = {"collection": 1.30, "training": 1.55, "evaluation": 1.35}
POWER_W = 0.0195  # the PPK2's run-average current x supply: one power for every phase of a run
CONFIGS = [Configuration("digits", "digits_cnn", "conv2", 8, 60, 10, batch=8),
           Configuration("digits", "digits_cnn", "pool2", 0, 90, 6, batch=4),
           Configuration("digits", "digits_cnn", "fc1", 16, 40, 8, batch=16)]
REAL = load_board("nrf52840dk")


def dk_record(config: Configuration, trial: int, board: str = "nrf52840dk", energy: bool = True) -> ValidationRecord:
    """What `dse validate --board nrf52840dk --ppk2` records, with cycles = the emulator's instructions x CPI."""
    test, epochs_run, best = 40, config.epochs - 1, config.epochs - 3
    fw = price_firmware(load_firmware_calibration("qemu-an386"), workload_from_config(config, 3), float(epochs_run),
                        test, float(best))
    cycles = {p: round(fw.instructions[p] * CPI[p]) for p in CPI}
    energy_mj = {p: n / 64e6 * POWER_W * 1e3 for p, n in cycles.items()} if energy else None
    measured = Measured(accuracy=0.9, correct=36, test=test, epochs_run=epochs_run, best_epoch=best, cycles=cycles,
                        cycles_source="DWT->CYCCNT", energy_mj=energy_mj,
                        energy_source="PPK2 run-average" if energy else None)
    return ValidationRecord("dkstudy", trial, board, "ok", configuration=config.to_dict(),
                            provenance=Provenance("s" * 64, "e" * 64, "gcc", date_utc="2026-11-22T00:00:00Z"),
                            measured=measured)


@pytest.fixture
def boards(tmp_path, monkeypatch):
    """Packaged boards with their calibration folders copied, so imports and refits touch only the copies."""
    import cost_models.board as board_module

    root = tmp_path / "cm"
    (root / "boards").mkdir(parents=True)
    for name in ("nrf52840dk", "qemu-an386"):
        shutil.copy(load_board(name).path, root / "boards" / f"{name}.toml")
        shutil.copytree(load_board(name).calibration_dir, root / "calibration" / name)
    monkeypatch.setattr(board_module, "BOARDS_DIR", root / "boards")
    clear_map_cache()
    yield root
    clear_map_cache()


def test_own_runs_give_every_phase_a_fitted_cpi_and_power(boards):
    board = load_board("nrf52840dk")
    rows = [row for i, c in enumerate(CONFIGS)
            for row in timed_rows_from_validation(dk_record(c, i), f"validation:dkstudy/trial-{i}")]
    assert {r["metric"] for r in rows} == {"cycles", "energy_nj"} and {r["board"] for r in rows} == {"nrf52840dk"}
    append_rows(board.calibration_dir / RUNS_DIR / "validations.csv", rows)
    m = build_map(board, platform=load_emulator_map(board).platform)
    for phase, cpi in CPI.items():
        p = m.phases[phase]
        assert p.cpi == pytest.approx(cpi, rel=1e-6) and p.cpi_status == "fitted"
        assert "3 validation runs of our firmware on the board" in p.cpi_source
        assert p.power_w == pytest.approx(POWER_W, rel=1e-6) and p.power_status == "fitted"
    own = [r for r in m.residuals if r.source != TABLE3_SOURCE]
    assert len(own) == 9 and all(abs(r.rel_error) < 1e-6 for r in own)
    assert sum(r.source == TABLE3_SOURCE for r in m.residuals) == 12  # still shown, priced with our training CPI
    assert any("the paper's firmware; ours, timed on the board: 1.550" in n for n in m.notes)
    assert not any("absorbs the difference" in n for n in m.notes)
    write_map(m, board.calibration_dir / MAP_FILE)
    clear_map_cache()
    assert not load_emulator_map(board).stale
    priced = predict(CONFIGS[0], board, epochs_run=9, test_inputs=40, best_epoch=7)
    for phase in CPI:
        assert priced.phases[phase].cycles == pytest.approx(priced.instructions[phase] * CPI[phase], rel=1e-6)
    pts = cross_validate_map(timed_runs_of(m), m.clock_hz, "run")
    assert costs_of(pts) == ("cycles.collection", "energy.collection", "cycles.training", "energy.training",
                             "cycles.evaluation", "energy.evaluation")
    assert all(abs(p.rel_error) < 1e-6 for p in pts)  # integer cycles and nJ
    with (board.calibration_dir / RUNS_DIR / "validations.csv").open("a") as fh:
        fh.write("")  # unchanged bytes: still fresh
    clear_map_cache()
    assert not load_emulator_map(board).stale
    append_rows(board.calibration_dir / RUNS_DIR / "validations.csv",
                timed_rows_from_validation(dk_record(CONFIGS[0], 9), "validation:dkstudy/trial-9"))
    clear_map_cache()
    assert any("firmware_runs/validations.csv changed" in s for s in load_emulator_map(board).stale)


def test_runs_without_energy_keep_the_board_power(boards):
    board = load_board("nrf52840dk")
    rows = [row for i, c in enumerate(CONFIGS)
            for row in timed_rows_from_validation(dk_record(c, i, energy=False), f"validation:dkstudy/trial-{i}")]
    append_rows(board.calibration_dir / RUNS_DIR / "validations.csv", rows)
    m = build_map(board, platform=None)
    assert m.phases["collection"].cpi == pytest.approx(1.30, rel=1e-6)
    assert m.phases["collection"].power_status == "board" and m.phases["collection"].power_w == pytest.approx(0.024)
    assert m.phases["training"].power_status == "fitted" and "Table III energy" in m.phases["training"].power_source


def test_emulated_and_failed_records_give_no_timed_rows():
    qemu = dk_record(CONFIGS[0], 0, board="qemu-an386")
    qemu.measured.instructions, qemu.measured.cycles = {"training": 5}, None
    failed = dk_record(CONFIGS[0], 1)
    failed.status = "failed"
    assert timed_rows_from_validation(qemu, "x") == [] and timed_rows_from_validation(failed, "x") == []


def test_calibrate_add_imports_the_dk_records_and_refits(boards, tmp_path, capsys):
    from dse.cli import main

    folder = tmp_path / "validations"
    for i, c in enumerate(CONFIGS):
        write_record(dk_record(c, i), folder)
    other = dk_record(CONFIGS[0], 7, board="qemu-an386")
    other.measured.instructions, other.measured.cycles = {"training": 5}, None
    write_record(other, folder)
    assert main(["calibrate", "--board", "nrf52840dk", "--add", str(folder), "--report",
                 "--plots", str(tmp_path / "plots")]) == 0
    out, err = capsys.readouterr()
    assert "imported 3 nrf52840dk validation record(s)" in err and "1 failed, of another board" in err
    assert "training    CPI 1.55 (fitted: DWT cycles of 3 validation runs of our firmware on the board)" in out
    assert "cycles.evaluation" in out and (tmp_path / "plots" / "residuals-map-run.png").is_file()
    m = load_emulator_map("nrf52840dk")
    assert m.phases["evaluation"].cpi == pytest.approx(1.35, rel=1e-6) and not m.stale
    # again: nothing new, the same map
    assert main(["calibrate", "--board", "nrf52840dk", "--add", str(folder)]) == 0
    assert "imported 0 nrf52840dk validation record(s)" in capsys.readouterr().err


def test_bad_import_changes_nothing(boards, tmp_path, capsys, monkeypatch):
    from cost_models.microtl_dse.emulator_map import EmulatorMapError
    from dse.cli import main
    from dse.commands import calibrate as calibrate_cmd

    runs_csv = load_board("nrf52840dk").user_calibration_dir / RUNS_DIR / "validations.csv"  # where imports go
    map_file = boards / "calibration" / "nrf52840dk" / MAP_FILE
    map_before = map_file.read_bytes()
    folder = tmp_path / "validations"
    write_record(dk_record(CONFIGS[0], 0), folder)
    (folder / "trial-5-nrf52840dk.json").write_text("{not json")
    assert main(["calibrate", "--board", "nrf52840dk", "--add", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dse: error: ") and "trial-5-nrf52840dk.json" in err[-1]
    assert not runs_csv.exists() and map_file.read_bytes() == map_before

    (folder / "trial-5-nrf52840dk.json").unlink()

    def broken(*a, **k):
        raise EmulatorMapError("simulated failure of the refit")

    monkeypatch.setattr(calibrate_cmd, "build_map", broken)  # the refit `dse calibrate --add` runs
    assert main(["calibrate", "--board", "nrf52840dk", "--add", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "restored" in err and "simulated failure of the refit" in err
    assert not runs_csv.exists() and map_file.read_bytes() == map_before
    json.loads(map_before)  # the shipped map copy was never touched
