"""The validation record: JSON round trip, atomic writes, schema checks, relative errors."""
from __future__ import annotations

import json
import os

import pytest

from firmware.records import read_record, relative_error, write_record
from vocabulary.validation_record import Measured, Predicted, Provenance, ValidationRecord, attr_key


def sample() -> ValidationRecord:
    return ValidationRecord(
        study="s", trial=3, board="qemu-an386", status="ok", configuration={"cut": "pool2", "hidden": 0},
        provenance=Provenance(sources_sha256="a" * 64, elf_sha256="b" * 64, toolchain="gcc",
                              board_versions={"qemu": "7.2"}, date_utc="2026-01-01T00:00:00+00:00", host="h"),
        measured=Measured(accuracy=0.9, flash_bytes=1000, static_ram_bytes=500, stack_bytes=100, heap_bytes=0,
                          peak_ram_bytes=600, instructions={"training": 10}, wall_s={"run": 0.5}),
        predicted=Predicted(board="nrf52840dk", accuracy=0.91, ram_total=550, cycles={"collection": None}),
        errors={"accuracy_pp": -1.0}, notes=["n"])


def test_round_trip_and_names(tmp_path):
    record = sample()
    path = write_record(record, tmp_path / "validations")
    assert path.name == "trial-3-qemu-an386.json" and record.key == attr_key("qemu-an386", 3)
    assert record.key == "validation/qemu-an386/trial-3"
    again = read_record(path)
    assert again == record and again.to_dict() == json.loads(path.read_text())
    assert again.predicted.instructions == "not predicted"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_atomic_write_keeps_the_old_record_on_failure(tmp_path, monkeypatch):
    path = write_record(sample(), tmp_path)
    before = path.read_text()
    broken = sample()
    broken.notes = [object()]  # not JSON-serializable: the write fails midway

    with pytest.raises(TypeError):
        write_record(broken, tmp_path)
    assert path.read_text() == before
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_unknown_keys_and_schema_are_refused():
    data = sample().to_dict()
    with pytest.raises(ValueError, match="unknown key"):
        ValidationRecord.from_dict({**data, "surprise": 1})
    with pytest.raises(ValueError, match="schema"):
        ValidationRecord.from_dict({**data, "schema": 99})


def test_relative_error():
    assert relative_error(110, 100) == pytest.approx(0.1)
    assert relative_error(None, 100) is None and relative_error(5, None) is None and relative_error(5, 0) is None
