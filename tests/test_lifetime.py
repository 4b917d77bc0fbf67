"""Battery lifetime: one pick's lifetime recomputed by hand from the board file and the study file (to 0.1%), the
breakdown in reports and `dse predict`, and bad deployment input (one line naming file, key and value; exit 2)."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from cost_models.board import BoardSpecError, load_board
from cost_models.deployment import DeploymentError, deployment_from_table
from cost_models.lifetime import DAYS_PER_MONTH, EventCost, compare
from cost_models.predict import predict
from dse.cli import main
from vocabulary.configuration import Configuration
from models.zoo import get_model

REPO = Path(__file__).resolve().parents[1]
TINY = (REPO / "studies" / "tiny.toml").read_text()
DEPLOYMENT = """
[deployment]
battery_mah = 225
battery_v = 3.0
inferences_per_hour = 60
adaptations_per_month = 4
"""
LIFETIME = TINY.replace('energy = "minimize"', 'lifetime = "maximize"') + DEPLOYMENT


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A tiny study with the lifetime objective, run with the real models and cost models."""
    folder = tmp_path_factory.mktemp("lifetime")
    (folder / "lt.toml").write_text(LIFETIME.replace("trials = 6", "trials = 4"))
    assert main(["run", str(folder / "lt.toml"), "--out", str(folder / "out"), "--quiet"]) == 0
    return folder / "out"


def test_pick_lifetime_recomputed_by_hand_from_board_and_study_files(study):
    pick = pd.read_csv(study / "pareto.csv").iloc[0]
    board = tomllib.loads((REPO / "cost_models" / "boards" / "nrf52840dk.toml").read_text())
    dep = tomllib.loads(LIFETIME)["deployment"]
    v = board["power"]["supply_v"]
    # one inference: our firmware's evaluation phase per input (frozen network + head), predicted
    config = Configuration(task="digits", model="digits_cnn", cut=pick["cut"], hidden=int(pick["hidden"]),
                           samples=int(pick["samples"]), epochs=int(pick["epochs"]), batch=int(pick["batch"]))
    one, two = (predict(config, "nrf52840dk", test_inputs=t).phases["evaluation"] for t in (1, 2))
    inf_mj, inf_s = two.energy_mj - one.energy_mj, two.seconds - one.seconds
    # one on-device adaptation: the trial's predicted collection + training
    ad_mj = pick["predicted.energy.collection_mj"] + pick["predicted.energy.training_mj"]
    ad_s = pick["predicted.time.collection_s"] + pick["predicted.time.training_s"]
    # one BLE adaptation: N raw 8x8 int8 samples up, the int8 head (weights, biases, 2 shift bytes a layer) down
    features = get_model("digits_cnn").check_cut(pick["cut"]).elements
    h = int(pick["hidden"])
    head = (features * 3 + 3 + 2) if h == 0 else (features * h + h + 2 + h * 3 + 3 + 2)
    radio_w = board["radio"]["current_ma"] * 1e-3 * v
    up_s = (int(pick["samples"]) * 64 + head) * 8 / board["radio"]["payload_bps"]
    per_day = dep["inferences_per_hour"] * 24
    events = dep["adaptations_per_month"] / (365.25 / 12)
    sleep_w = board["sleep"]["current_ua"] * 1e-6 * v
    battery_j = dep["battery_mah"] * 3.6 * dep["battery_v"]

    def days(event_mj, event_s):
        active = per_day * inf_s + events * event_s
        joules = (sleep_w * (86400 - active) * 1e3 + per_day * inf_mj + events * event_mj) / 1e3
        return battery_j / joules

    on_device, ble = days(ad_mj, ad_s), days(up_s * radio_w * 1e3, up_s)
    assert pick["lifetime.on_device_days"] == pytest.approx(on_device, rel=1e-3)
    assert pick["lifetime.ble_days"] == pytest.approx(ble, rel=1e-3)
    assert pick["lifetime.gain_days"] == pytest.approx(on_device - ble, rel=1e-3, abs=1e-3)
    summary = (study / "summary.md").read_text()
    assert "## Battery lifetime" in summary and "days" in summary
    assert (study / "lifetime_breakdown.png").read_bytes()[:4] == b"\x89PNG"


def test_breakdown_terms_sum_and_more_adaptation_costs_days():
    d = deployment_from_table({"battery_mah": 100, "battery_v": 3, "inferences_per_hour": 10,
                               "adaptations_per_month": 2, "sleep_current_ua": 2})
    inf, ad, up = EventCost(0.01, 0.3), EventCost(3.0, 70.0), EventCost(0.1, 2.0)
    c = compare(d, 2e-6 * 3, inf, ad, up)
    assert c.on_device.daily_mj["radio"] == 0 and c.ble.daily_mj["adaptation"] == 0
    assert c.on_device.daily_mj["adaptation"] == pytest.approx(2 / DAYS_PER_MONTH * 70.0)
    assert c.on_device.total_mj == pytest.approx(sum(c.on_device.daily_mj.values()))
    more = compare(deployment_from_table({**d.to_dict(), "adaptations_per_month": 20}), 2e-6 * 3, inf, ad, up)
    assert more.on_device.days < c.on_device.days and more.gain_days < c.gain_days < 0


def test_predict_prints_both_alternatives(capsys, tmp_path):
    args = ["predict", "--model", "digits_cnn", "--board", "nrf52840dk", "--cut", "pool2", "--hidden", "8",
            "--samples", "100", "--epochs", "10"]
    assert main([*args, "--battery-mah", "225", "--battery-v", "3", "--inferences-per-hour", "60",
                 "--adaptations-per-month", "4"]) == 0
    out = capsys.readouterr().out
    assert "on-device adaptation" in out and "BLE upload" in out and "days" in out
    (tmp_path / "dep.toml").write_text(DEPLOYMENT)
    assert main([*args, "--deployment", str(tmp_path / "dep.toml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["lifetime"]["on_device_days"] > 0 and data["deployment"]["battery_mah"] == 225


@pytest.mark.parametrize("edit, key, value", [
    ("battery_mah = 225", "deployment.battery_mah", "-1"),
    ("battery_v = 3.0", "deployment.battery_v", '"3 V"'),
    ("inferences_per_hour = 60", "deployment.inferences_per_hour", "-5"),
    ("adaptations_per_month = 4", "deployment.adaptations_per_month", None),
    ("battery_v = 3.0", "deployment.sleep_current_ua", "0"),
    ("battery_v = 3.0", "deployment.shelf_life", "3"),
])
def test_bad_deployment_exits_2_naming_file_key_and_value(edit, key, value, tmp_path, capsys):
    name = key.split(".")[1]
    if value is None:  # missing
        text = LIFETIME.replace(edit + "\n", "")
    elif name in edit:
        text = LIFETIME.replace(edit, f"{name} = {value}")
    else:
        text = LIFETIME.replace(edit, f"{edit}\n{name} = {value}")
    (tmp_path / "bad.toml").write_text(text)
    assert main(["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.toml" in err and key in err, err
    assert value is None and "missing" in err or value in err, err
    assert not (tmp_path / "out").exists()


def test_lifetime_without_deployment_exits_2(tmp_path, capsys):
    (tmp_path / "no.toml").write_text(LIFETIME.replace(DEPLOYMENT, ""))
    assert main(["run", str(tmp_path / "no.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no.toml: objectives.lifetime:" in err and "[deployment]" in err
    assert '"maximize"' in err and not (tmp_path / "out").exists()


def test_deployment_on_a_board_without_power_or_sleep_figures_exits_2(tmp_path, capsys):
    (tmp_path / "q.toml").write_text(LIFETIME.replace('name = "nrf52840dk"', 'name = "qemu-an386"'))
    assert main(["run", str(tmp_path / "q.toml"), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "q.toml: deployment:" in err and "qemu-an386" in err


def test_predict_rejects_bad_deployment_flags_and_files(tmp_path, capsys):
    args = ["predict", "--model", "digits_cnn", "--board", "nrf52840dk", "--cut", "pool2", "--hidden", "8",
            "--samples", "100", "--epochs", "10"]
    assert main([*args, "--battery-mah", "-3", "--battery-v", "3", "--inferences-per-hour", "1",
                 "--adaptations-per-month", "1"]) == 2
    assert "--battery-mah" in capsys.readouterr().err
    assert main([*args, "--battery-mah", "3"]) == 2  # partial: the rest missing
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--battery-v: missing" in err
    (tmp_path / "d.toml").write_text(DEPLOYMENT.replace("battery_v = 3.0", "battery_v = -3.0"))
    assert main([*args, "--deployment", str(tmp_path / "d.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "d.toml: deployment.battery_v" in err and "-3.0" in err


def test_board_sleep_section_is_checked(tmp_path):
    text = (REPO / "cost_models" / "boards" / "nrf52840dk.toml").read_text()
    (tmp_path / "b.toml").write_text(text.replace("current_ua = 3.16", "current_ua = -1"))
    with pytest.raises(BoardSpecError, match=r"\[sleep\]\.current_ua must be > 0"):
        load_board(tmp_path / "b.toml")
    assert load_board("nrf52840dk").sleep_current_ua == 3.16
    with pytest.raises(DeploymentError, match="battery_mah"):
        deployment_from_table({"battery_mah": True, "battery_v": 3, "inferences_per_hour": 1,
                               "adaptations_per_month": 1})
