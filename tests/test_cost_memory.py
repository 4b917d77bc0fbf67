"""Memory model: byte counts from data-type widths, Table III's RAM column, the exact per-sample slope."""
import pytest

from cost_models import build_workload, load_board, load_calibration, load_records, predict, price, workload_from_config
from cost_models.board import BOARDS_DIR
from cost_models.paper.memory import FLASH_TERMS, RAM_TERMS, flash_bytes, ram_bytes
from vocabulary.configuration import Configuration
from models.zoo import list_models

TABLE3 = BOARDS_DIR.parent / "calibration" / "nrf52840dk" / "paper_table3.csv"
BOARD = load_board("nrf52840dk")


def _workload(model="har_rnn", cut="gru3", samples=100, momentum=True, scheme="q7"):
    return build_workload(model, cut, 3, 32, samples, 10, 8, momentum, scheme)


def test_byte_counts_follow_data_types():
    raw = ram_bytes(_workload())
    params = 258 * 32 + 32 + 32 * 3 + 3
    assert raw["sample_store"] == 100 * 258
    assert raw["head_weights"] == 4 * params
    assert raw["optimizer_state"] == 8 * params  # gradients + momentum velocity
    assert ram_bytes(_workload(momentum=False))["optimizer_state"] == 4 * params
    assert raw["batch_buffer"] == 8 * (258 + 2 * (32 + 3)) * 4
    assert raw["input_buffer"] == 128 * 9 * 4
    # int8 except the int16 GRU sequences of Table I: the largest consecutive pair is gru1 -> gru2
    assert raw["activation_buffers"] == 5504 + 2752
    assert tuple(raw) == RAM_TERMS and tuple(flash_bytes(_workload())) == FLASH_TERMS


def test_flash_counts_only_layers_up_to_the_cut():
    cifar = flash_bytes(_workload("cifar_cnn", "conv3"))["frozen_weights"]
    assert cifar == (27 * 64 + 64) + (576 * 32 + 32) + (288 * 16 + 16)
    assert flash_bytes(_workload("cifar_cnn", "conv2"))["frozen_weights"] == (27 * 64 + 64) + (576 * 32 + 32)
    # s8 kernels keep int32 biases
    assert flash_bytes(_workload("cifar_cnn", "conv3", scheme="s8"))["frozen_weights"] == cifar + 3 * (64 + 32 + 16)


def test_unknown_scheme():
    with pytest.raises(ValueError, match="unknown quantization scheme 'fp8'"):
        _workload(scheme="fp8")


def test_table3_ram_within_2kB():
    cal = load_calibration(BOARD)
    rows = [r for r in load_records(TABLE3) if r.metric == "ram"]
    assert len(rows) == 12
    for r in rows:
        p = price(r.workload(), BOARD, cal, r.epochs)
        in_scope = sum(p.ram[t] for t in r.scope)
        assert abs(in_scope - r.value) <= 2000, (r.run, in_scope, r.value)


@pytest.mark.parametrize("model", [m.name for m in list_models()])
def test_per_sample_slope_is_the_feature_size_exactly(model):
    cal = load_calibration(BOARD)
    spec = next(m for m in list_models() if m.name == model)
    for cut in spec.cut_points():
        for n in (100, 300, 500):
            a = price(build_workload(model, cut, 3, 32, n, n // 10, 8, True, "q7"), BOARD, cal, 20)
            b = price(build_workload(model, cut, 3, 32, n + 100, (n + 100) // 10, 8, True, "q7"), BOARD, cal, 20)
            assert b.ram_total - a.ram_total == 100 * spec.feature_size(cut)


def test_predict_slope_through_the_configuration():
    base = Configuration("digits", "digits_cnn", "conv2", 32, 200, 20)
    a = predict(base, firmware="paper")
    b = predict(Configuration("digits", "digits_cnn", "conv2", 32, 300, 20), firmware="paper")
    assert isinstance(a.ram_total, int)
    assert b.ram_total - a.ram_total == 100 * 4 * 4 * 32  # conv2 output 4x4x32 int8


def test_our_firmware_slope_adds_the_shuffle_index():
    """Our firmware (the default on nrf52840dk) also keeps a uint16 shuffle index per training sample."""
    base = Configuration("digits", "digits_cnn", "conv2", 32, 200, 20)  # val_fraction 0.1: 180 -> 270 training
    a, b = predict(base), predict(Configuration("digits", "digits_cnn", "conv2", 32, 300, 20))
    assert (a.firmware, b.firmware) == ("microtl-dse", "microtl-dse")
    assert b.ram["sample_store"] - a.ram["sample_store"] == 100 * 4 * 4 * 32
    train = [workload_from_config(c).train_samples for c in (base, Configuration("digits", "digits_cnn", "conv2", 32,
                                                                                   300, 20))]
    # uint16 per training sample, times the group scale the qemu-an386 runs fitted (close to 1)
    assert b.ram["shuffle_index"] - a.ram["shuffle_index"] == pytest.approx(2 * (train[1] - train[0]), rel=0.02)
