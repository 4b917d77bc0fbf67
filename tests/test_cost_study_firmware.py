"""Which firmware a study prices on a real board: `[board] firmware`, default ours where the board has a map."""
from pathlib import Path

import pytest

from dse.errors import StudyFileError
from dse.search.evaluate import Evaluator
from dse.study.file import load_study_file

REPO = Path(__file__).resolve().parents[1]
TINY = (REPO / "studies" / "tiny.toml").read_text()


def study(tmp_path, extra: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(TINY.replace('name = "nrf52840dk"', f'name = "nrf52840dk"\n{extra}', 1))
    return path


@pytest.mark.parametrize("line, firmware", [("", None), ('firmware = "paper"', "paper"),
                                            ('firmware = "microtl-dse"', "microtl-dse")])
def test_board_firmware_key_selects_the_model(tmp_path, line, firmware, monkeypatch):
    spec = load_study_file(study(tmp_path, line), check_environment=False)
    assert spec.firmware == firmware
    import models.simulate

    class Stats:
        epochs_mean = 5.0

    monkeypatch.setattr(models.simulate, "simulate", lambda *a, **k: Stats())
    config = spec.configuration({"cut": "conv2", "hidden": 8, "samples": 40, "epochs": 5, "batch": 8, "lr": 0.02})
    priced = Evaluator(spec)(config).prediction
    assert priced.firmware == (firmware or "microtl-dse")  # nrf52840dk ships an emulator map


def test_unknown_firmware_is_one_error_naming_the_key(tmp_path):
    with pytest.raises(StudyFileError, match=r"board\.firmware: must be one of microtl-dse, paper, got \"?cmsis"):
        load_study_file(study(tmp_path, 'firmware = "cmsis"'), check_environment=False)


def test_paper_firmware_on_an_emulated_board_is_refused(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(TINY.replace('name = "nrf52840dk"', 'name = "qemu-an386"\nfirmware = "paper"', 1))
    with pytest.raises(StudyFileError, match=r"board\.firmware: board qemu-an386 runs this project's firmware only"):
        load_study_file(path, check_environment=False)
