"""`dse calibrate` and `dse rescore`: refit and report from records, import validation records, one-line errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dse.cli import main
from dse.commands.rescore import front
from firmware.records import write_record
from vocabulary.configuration import Configuration
from vocabulary.validation_record import Measured, Provenance, ValidationRecord

SHIPPED = Path(__file__).resolve().parents[1] / "cost_models" / "calibration" / "qemu-an386"


@pytest.fixture
def records(tmp_path) -> Path:
    d = tmp_path / "records"
    d.mkdir()
    shutil.copy(SHIPPED / "campaign.csv", d / "campaign.csv")
    return d


def test_refit_writes_snapshot_and_report(records, tmp_path, capsys):
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--board", "qemu-an386", "--refit", "--records", str(records), "--out", str(out),
                 "--report", "--plots", str(tmp_path / "plots"), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "leave-one-shape-out" in text and "instructions.training" in text and "deployed_ram" in text
    assert (tmp_path / "plots" / "residuals-cv.png").stat().st_size > 1000
    from cost_models.microtl_dse.fit import read_firmware_calibration

    assert read_firmware_calibration(out).board == "qemu-an386"


def test_import_validation_record_then_refit(records, tmp_path, capsys):
    config = Configuration(task="digits", model="digits_cnn", cut="pool2", hidden=16, samples=40, epochs=3,
                           batch=8)
    rec = ValidationRecord(study="s", trial=7, board="qemu-an386", status="ok", configuration=config.to_dict(),
                           provenance=Provenance(sources_sha256="c" * 64, elf_sha256="d" * 64, toolchain="gcc",
                                                 board_versions={"qemu": "QEMU 7.2"}, date_utc="2025-01-02T00:00"),
                           measured=Measured(epochs_run=3, best_epoch=3, test=178, flash_bytes=30000,
                                             static_ram_bytes=30000, stack_bytes=400, heap_bytes=0,
                                             peak_ram_bytes=30400,
                                             instructions={"collection": 10**6, "training": 2 * 10**6,
                                                           "evaluation": 3 * 10**6}))
    vdir = tmp_path / "validations"
    write_record(rec, vdir)
    write_record(ValidationRecord(study="s", trial=8, board="qemu-an386", status="failed", reason="x"), vdir)
    args = ["calibrate", "--board", "qemu-an386", "--add", str(vdir), "--records", str(records), "--quiet"]
    assert main(args) == 0
    rows = (records / "validations.csv").read_text().splitlines()
    assert len(rows) == 1 + 7 and "validation:s/trial-7" in rows[1]
    assert main(args) == 0  # imported once
    assert len((records / "validations.csv").read_text().splitlines()) == 8


def test_bad_input_is_one_line_exit_2(records, tmp_path, capsys):
    assert main(["calibrate", "--board", "esp32", "--refit"]) == 2
    assert "runs on qemu-an386" in capsys.readouterr().err
    (records / "campaign.csv").write_text((records / "campaign.csv").read_text().replace(",campaign,", ",,", 1))
    assert main(["calibrate", "--board", "qemu-an386", "--refit", "--records", str(records)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "campaign.csv, line 2, column source" in err
    assert main(["rescore", str(tmp_path / "nope")]) == 2


def test_front_keeps_non_dominated_points():
    pts = [(0, 0.9, 100), (1, 0.8, 50), (2, 0.85, 120), (3, 0.95, 200), (4, 0.7, 60)]
    assert [n for n, _, _ in front(pts)] == [1, 0, 3]
