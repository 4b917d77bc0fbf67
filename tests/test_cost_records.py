"""Measurement records: Table III as data, validated on load with errors naming file, line and column."""
import csv
from pathlib import Path

import pytest

from cost_models import RecordError, load_records
from cost_models.board import BOARDS_DIR

TABLE3 = BOARDS_DIR.parent / "calibration" / "nrf52840dk" / "paper_table3.csv"


def test_table3_transcription():
    recs = load_records(TABLE3)
    assert len(recs) == 2 * 6 * 4
    assert {r.firmware for r in recs} == {"published"}
    assert {r.source for r in recs} == {"Profentzas et al., MicroTL, IEEE LCN 2022, Table III"}
    by = {(r.task, r.samples, r.metric): r for r in recs}
    assert by["har3b", 100, "ram"].value == 63_000  # kB = 1000 B
    assert by["har3b", 600, "energy"].value == 1008 and by["har3b", 600, "energy"].std == 0.1
    assert by["cifar3", 500, "time"].value == 32 and by["cifar3", 100, "time"].std == 0.2
    assert by["cifar3", 300, "flash"].value == 98_000
    har = by["har3b", 100, "ram"]
    assert (har.model, har.cut, har.feature_bytes, har.input_shape) == ("har_rnn", "gru3", 258, (128, 9))
    cifar = by["cifar3", 100, "time"]
    assert (cifar.model, cifar.cut, cifar.feature_bytes, cifar.input_shape) == ("cifar_cnn", "conv3", 256, (32, 32, 3))
    assert cifar.phase == "training" and (cifar.hidden, cifar.classes, cifar.epochs, cifar.batch) == (32, 3, 20, 8)
    assert cifar.val_samples == 10 and cifar.val_fraction == 0.1
    assert "activation_buffers" not in har.scope and "sample_store" in har.scope


def _corrupt(tmp_path: Path, line: int, column: str, value: str) -> Path:
    rows = list(csv.DictReader(TABLE3.open()))
    rows[line - 2][column] = value
    path = tmp_path / "bad.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("value", "abc", "not a number"),
        ("value", "-3", "must be a finite number >= 0"),
        ("unit", "MB", "must be one of"),
        ("scope", "sample_store+stack", "covers"),
        ("feature_bytes", "300", "stores 258 B per feature"),
        ("model", "resnet", "unknown model"),
        ("cut", "gru9", "unknown cut point"),
        ("input_shape", "32x32x3", "takes 128x9"),
        ("date", "last year", "YYYY"),
        ("firmware", "someday", "git hash"),
        ("samples", "0", ">= 1"),
    ],
)
def test_bad_value_names_file_line_column(tmp_path, column, value, message):
    path = _corrupt(tmp_path, 3, column, value)
    with pytest.raises(RecordError) as err:
        load_records(path)
    text = str(err.value)
    assert text.startswith(f"{path}, line 3, column {column}: ") and message in text and "\n" not in text


def test_run_must_describe_one_configuration(tmp_path):
    path = _corrupt(tmp_path, 3, "hidden", "64")
    with pytest.raises(RecordError, match=r"line 3, column hidden: run 'table3-har3b-100'"):
        load_records(path)


def test_missing_column_names_file(tmp_path):
    rows = TABLE3.read_text().splitlines()
    header = rows[0].split(",")
    path = tmp_path / "nocol.csv"
    path.write_text("\n".join([",".join(h for h in header if h != "scope")] + rows[1:2]) + "\n")
    with pytest.raises(RecordError, match=r"nocol\.csv: missing column\(s\) scope"):
        load_records(path)


def test_unknown_column_and_empty_file(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text(TABLE3.read_text().replace("date\n", "date,colour\n", 1))
    with pytest.raises(RecordError, match="unknown column"):
        load_records(path)
    empty = tmp_path / "empty.csv"
    empty.write_text(TABLE3.read_text().splitlines()[0] + "\n")
    with pytest.raises(RecordError, match="no records"):
        load_records(empty)
