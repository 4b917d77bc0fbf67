"""Board descriptions: facts with sources, clear errors for unknown boards and malformed files."""
import re
from pathlib import Path

import pytest

from cost_models import BoardSpecError, list_boards, load_board
from cost_models.board import BOARDS_DIR


def test_nrf52840dk_facts():
    b = load_board("nrf52840dk")
    assert (b.core, b.clock_hz, b.ram_bytes, b.flash_bytes) == ("Cortex-M4F", 64_000_000, 262_144, 1_048_576)
    assert b.supply_v == 3.0
    assert b.phase_power_w("collection") == pytest.approx(0.024)  # 8 mA x 3 V
    assert b.phase_power_w("training") == pytest.approx(0.021)  # 7 mA x 3 V
    assert b.radio_payload_bps == 700_000 and b.radio_power_w == pytest.approx(0.0225)
    assert b.sleep_current_ua == pytest.approx(3.16)  # System ON, full RAM retention, RTC wake-up
    assert {section for section, _ in b.sources} == {"cpu", "memory", "power", "radio", "sleep"}
    assert all(source for _, source in b.sources)
    assert b.calibration_dir == BOARDS_DIR.parent / "calibration" / "nrf52840dk"


def test_load_by_path_equals_by_name():
    assert load_board(BOARDS_DIR / "nrf52840dk.toml") == load_board("nrf52840dk")


def test_unknown_board_lists_known_ones():
    with pytest.raises(BoardSpecError, match=r"unknown board 'nosuch'.*nrf52840dk"):
        load_board("nosuch")
    assert "nrf52840dk" in list_boards()


def test_unknown_phase_power():
    with pytest.raises(ValueError, match="evaluation"):
        load_board("nrf52840dk").phase_power_w("evaluation")


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = (BOARDS_DIR / "nrf52840dk.toml").read_text()
    assert re.search(old, text, flags=re.M)
    path = tmp_path / "variant.toml"
    path.write_text(re.sub(old, new, text, flags=re.M))
    return path


def test_missing_key_names_file_and_key(tmp_path):
    path = _variant(tmp_path, r"^supply_v = .*$", "")
    with pytest.raises(BoardSpecError, match=r"variant\.toml: missing key \[power\]\.supply_v"):
        load_board(path)


def test_missing_source_names_key(tmp_path):
    path = _variant(tmp_path, r"^source = \"nRF52840 Product Specification \(Nordic Semiconductor\): 64.*$", "")
    with pytest.raises(BoardSpecError, match=r"missing key \[cpu\]\.source"):
        load_board(path)


def test_bad_value_names_key_and_value(tmp_path):
    path = _variant(tmp_path, r"^ram_bytes = .*$", "ram_bytes = -1")
    with pytest.raises(BoardSpecError, match=r"variant\.toml: \[memory\]\.ram_bytes must be > 0, got -1"):
        load_board(path)
