"""What the reporting commands print: `dse --version`, --json, tables that fit the terminal width ($COLUMNS),
figures to three significant digits."""
from __future__ import annotations

import json

import pytest

from dse.cli import main
from dse.reports.tables import sig, text_table

PREDICT = ["predict", "--model", "digits_cnn", "--board", "nrf52840dk", "--cut", "conv2", "--hidden", "8",
           "--samples", "40", "--epochs", "5"]


def test_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"dse (microtl-dse) {version('microtl-dse')}"


@pytest.mark.parametrize("value, text", [(150, "150"), (92.29, "92.3"), (7.018, "7.02"), (0.012345, "0.0123"),
                                         (1234.5, "1,230"), (99.96, "100"), (-3.14159, "-3.14"), (0, "0")])
def test_three_significant_digits(value, text):
    assert sig(value) == text


def test_table_wraps_text_then_drops_named_columns():
    headers = ["pick", "trial", "accuracy (%)", "predicted energy (mJ)", "note"]
    rows = [["1", "12", "83.1 ± 2.0", "92.3", "a long note " * 6], ["2", "3", "80.0 ± 1.0", "150", "short"]]
    wide = text_table(headers, rows)
    assert len(wide.splitlines()) == 3  # no width: one line per row, as before
    narrow = text_table(headers, rows, width=60)
    assert max(len(line) for line in narrow.splitlines()) <= 60
    assert "a long note" in narrow and "92.3" in narrow  # wrapped, nothing dropped
    tight = text_table(headers, rows, width=40, drop_first=["pick"])
    assert max(len(line) for line in tight.splitlines()) <= 40
    assert "not shown at this width: pick" in tight.replace("\n", " ")


def test_predict_fits_100_columns_with_three_digit_figures(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(PREDICT) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    energy = next(line for line in out.splitlines() if line.startswith("energy_mj"))
    digits = energy.split()[-1].replace(".", "").replace(",", "").lstrip("0")
    assert len(digits) <= 3, energy


def test_model_json_and_width(capsys, monkeypatch):
    assert main(["model", "--json"]) == 0
    zoo = json.loads(capsys.readouterr().out)
    assert {m["model"] for m in zoo} >= {"digits_cnn", "cifar_cnn"} and all(m["cut_points"] for m in zoo)
    assert main(["model", "cifar_cnn", "--json"]) == 0
    menu = json.loads(capsys.readouterr().out)
    assert [layer["name"] for layer in menu["layers"]][:2] == ["input", "conv1"]
    assert menu["head"]["layers"][0]["weight_shape"] == [256, 32]
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["model"]) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 100
