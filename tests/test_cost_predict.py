"""predict(): every term reported, totals are sums, uncalibrated phases say so, flat export, BLE, validation."""
import pytest

from cost_models import ble_upload, load_board, load_calibration, load_records, predict
from cost_models.board import BOARDS_DIR
from cost_models.paper.memory import FLASH_TERMS, RAM_TERMS
from vocabulary.configuration import Configuration
from models.tasks import list_tasks

TABLE3 = BOARDS_DIR.parent / "calibration" / "nrf52840dk" / "paper_table3.csv"
CONFIG = Configuration("digits", "digits_cnn", "conv2", 32, 200, 20)


def test_every_term_reported_and_totals_are_sums():
    p = predict(CONFIG, firmware="paper")
    assert tuple(p.ram) == RAM_TERMS and tuple(p.flash) == FLASH_TERMS
    assert p.ram_total == sum(p.ram.values()) and p.flash_total == sum(p.flash.values())
    assert all(isinstance(v, int) and v >= 0 for v in (*p.ram.values(), *p.flash.values()))
    assert p.ram["sample_store"] == 200 * 512
    included = [p.phases[k] for k in p.phases_included]
    assert p.latency_s == pytest.approx(sum(c.seconds for c in included))
    assert p.energy_mj == pytest.approx(sum(c.energy_mj for c in included))
    assert p.fits_ram and p.fits_flash


def test_collection_phase_is_uncalibrated_in_the_paper_model():
    p = predict(CONFIG, firmware="paper")
    collection = p.phases["collection"]
    assert (collection.cycles, collection.seconds, collection.energy_mj) == (None, None, None)
    assert "no collection records" in collection.note
    assert p.phases_included == ("training",)
    assert p.latency_s == p.phases["training"].seconds > 0
    assert any("collection phase uncalibrated" in n for n in p.notes)
    # energy of a phase = its time x its power (7 mA x 3 V for training)
    assert p.phases["training"].energy_mj == pytest.approx(p.phases["training"].seconds * 21.0)


def test_flat_dict_of_plain_values():
    d = predict(CONFIG, firmware="paper").to_dict()
    assert all(type(v) in (int, float, str) for v in d.values())
    for key in ("ram.sample_store", "ram_total", "flash.code", "flash_total", "time.training_s", "energy_mj",
                "latency_s", "ble.bytes", "ble.seconds", "ble.energy_mj", "fits_ram", "fits_flash"):  # fmt: skip
        assert key in d
    assert "time.collection_s" not in d and d["phases_uncalibrated"] == "collection"
    assert d["firmware"] == "paper"
    assert d["phases_included"] == "training" and d["ram_total"] == sum(v for k, v in d.items() if k.startswith("ram."))


def test_epochs_run_scales_training_only():
    full = predict(CONFIG, firmware="paper")
    half = predict(CONFIG, epochs_run=10, firmware="paper")
    assert half.phases["training"].seconds == pytest.approx(full.phases["training"].seconds / 2)
    assert half.ram == full.ram
    for bad in (0, -1, 21):
        with pytest.raises(ValueError, match="epochs_run"):
            predict(CONFIG, epochs_run=bad)


def test_board_by_object_or_name():
    assert predict(CONFIG, load_board("nrf52840dk")) == predict(CONFIG, "nrf52840dk")


def test_does_not_fit_when_the_store_outgrows_ram():
    p = predict(Configuration("digits", "digits_cnn", "conv1", 32, 1000, 20))
    assert p.ram["sample_store"] == 1000 * 576 and not p.fits_ram


@pytest.mark.parametrize(
    "field, value, message",
    [("model", "resnet", "unknown model"), ("cut", "conv9", "unknown cut point"), ("task", "mnist", "unknown task")],
)
def test_configuration_is_validated_by_the_registries(field, value, message):
    data = {**CONFIG.to_dict(), field: value}
    with pytest.raises(ValueError, match=message):
        predict(Configuration.from_dict(data))


# Table II uplink column (KB) per 100..600 samples; printed to 3 significant figures (and 692 for 691.2)
TABLE2 = {(128, 9): [115, 230, 346, 461, 576, 692], (32, 32, 3): [307, 614, 922, 1230, 1540, 1840]}


@pytest.mark.parametrize("shape", list(TABLE2))
def test_ble_upload_matches_table2(shape):
    board = load_board("nrf52840dk")
    elements = shape[0] * shape[1] * (shape[2] if len(shape) > 2 else 1)
    for n, published in zip(range(100, 700, 100), TABLE2[shape]):
        up = ble_upload(n, elements, board)
        assert abs(up.bytes / 1000 - published) <= max(1, 0.005 * published)
        assert up.seconds == pytest.approx(up.bytes * 8 / 700_000)
        assert up.energy_mj == pytest.approx(up.seconds * 7.5 * 3.0)


def test_ble_upload_in_prediction():
    p = predict(CONFIG)
    assert p.ble_upload.bytes == 200 * 64  # 8x8x1 int8 inputs


def test_table3_through_predict():
    """predict() itself reproduces Table III for the paper's registered tasks (the published-firmware model)."""
    recs = [r for r in load_records(TABLE3) if r.metric in ("ram", "time")]
    tasks = {t.default_model: t.name for t in list_tasks() if t.default_model}
    assert {r.model for r in recs} <= set(tasks)
    cal = load_calibration("nrf52840dk")
    flagged = {(f.run, f.metric) for f in cal.flagged}
    for r in recs:
        if r.model not in tasks or (r.run, r.metric) in flagged:
            continue
        config = Configuration(tasks[r.model], r.model, r.cut, r.hidden, r.samples, r.epochs, r.batch)
        p = predict(config, firmware="paper")
        if r.metric == "ram":
            assert abs(sum(p.ram[t] for t in r.scope) - r.value) <= 2000
        else:
            assert p.phases["training"].seconds == pytest.approx(r.value, rel=0.10)
