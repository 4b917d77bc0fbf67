"""The `dse` command's inspection subcommands: the zoo, the cut-point menu (paper Table I) and one prediction."""
from __future__ import annotations

import json

import pytest

from dse.cli import main

CIFAR_TABLE = """\
cifar_cnn: CNN for 32x32x3 images (paper Table I, CIFAR-7 source)
shapes as in MicroTL (LCN 2022) Table I, CNN

layer  kind       output shape  dtype   bytes  weights       MACs  arena B
input  input      (32, 32, 3)   int8    3,072        0          0
conv1  conv2d     (30, 30, 64)  int8   57,600    1,728  1,555,200      140
pool1  maxpool2d  (15, 15, 64)  int8   14,400        0          0    3,980
conv2  conv2d     (13, 13, 32)  int8    5,408   18,432  3,115,008   18,380
pool2  maxpool2d  (6, 6, 32)    int8    1,152        0          0   18,380
conv3  conv2d     (4, 4, 16)    int8      256    4,608     73,728   18,688
arena B: the frozen layers' activation arena of our firmware when cut at the layer (liveness plan)

head at cut conv3 (feature: 256 values, 256 bytes), hidden 32, 3 classes; float32 weights, biases not counted:
layer     kind  weight shape  weight bytes
head.fc1  FC    (256, 32)           32,768
head.fc2  FC    (32, 3)                384
"""

HAR_TABLE = """\
har_rnn: Conv1D + LSTM + GRU stack for 128x9 sensor windows (paper Table I, HAR-UCI-3a source)
shapes as in MicroTL (LCN 2022) Table I, RNN

layer  kind    output shape  dtype  bytes  weights     MACs  arena B
input  input   (128, 9)      int8   1,152        0        0
conv1  conv1d  (43, 9)       int8     387      243   10,449      140
lstm1  lstm    (43, 32)      int8   1,376    5,248  225,664      528
gru1   gru     (43, 64)      int16  5,504   18,432  792,576    1,764
gru2   gru     (43, 32)      int16  2,752    9,216  396,288    6,880
gru3   gru     (43, 6)       int8     258      684   29,412    8,256
arena B: the frozen layers' activation arena of our firmware when cut at the layer (liveness plan)

head at cut gru3 (feature: 258 values, 258 bytes), hidden 32, 3 classes; float32 weights, biases not counted:
layer     kind  weight shape  weight bytes
head.fc1  FC    (258, 32)           33,024
head.fc2  FC    (32, 3)                384
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dse: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_model_cifar_cnn_prints_paper_table_one(capsys):
    code, out, _ = run(capsys, "model", "cifar_cnn")
    assert code == 0
    assert out == CIFAR_TABLE


def test_model_har_rnn_prints_paper_table_one(capsys):
    code, out, _ = run(capsys, "model", "har_rnn")
    assert code == 0
    assert out == HAR_TABLE


def test_model_menu_for_another_cut_and_single_layer_head(capsys):
    code, out, _ = run(capsys, "model", "cifar_cnn", "--cut", "pool2", "--hidden", "0", "--classes", "5")
    assert code == 0
    assert "head at cut pool2 (feature: 1,152 values, 1,152 bytes), hidden 0, 5 classes" in out
    assert out.rstrip().endswith("head.fc1  FC    (1152, 5)           23,040")


def test_model_lists_the_zoo(capsys):
    code, out, _ = run(capsys, "model")
    assert code == 0
    for name, shape in [("digits_cnn", "(8, 8, 1)"), ("cifar_cnn", "(32, 32, 3)"), ("har_rnn", "(128, 9)")]:
        assert any(line.startswith(name) and shape in line for line in out.splitlines())
    assert "conv1, conv2, pool2, fc1" in out


@pytest.mark.parametrize("argv, needle", [
    (["model", "resnet"], "resnet"),
    (["model", "cifar_cnn", "--cut", "conv9"], "conv9"),
    (["model", "cifar_cnn", "--hidden", "-1"], "-1"),
])
def test_model_user_errors_are_one_line(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in one_line_error(err)


def test_argument_errors_are_one_line(capsys):
    code, _, err = run(capsys, "predict", "--model", "cifar_cnn")
    assert code == 2
    assert "--board" in one_line_error(err)


PREDICT = ["predict", "--model", "cifar_cnn", "--board", "nrf52840dk", "--cut", "conv3", "--hidden", "32",
           "--samples", "500", "--epochs", "20"]


def test_predict_json_has_terms_totals_and_ble(capsys):
    code, out, _ = run(capsys, *PREDICT, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["configuration"]["cut"] == "conv3" and data["classes"] == 3
    pred = data["prediction"]
    assert pred["ram.sample_store"] == 500 * 256  # one int8 feature of 256 bytes per sample
    assert pred["ram_total"] == sum(v for k, v in pred.items() if k.startswith("ram."))
    assert pred["flash_total"] == sum(v for k, v in pred.items() if k.startswith("flash."))
    for key in ("latency_s", "energy_mj", "ble.bytes", "ble.seconds", "ble.energy_mj"):
        assert isinstance(pred[key], (int, float)), key


def test_predict_table_names_predictions_and_ble_alternative(capsys):
    code, out, _ = run(capsys, *PREDICT, "--batch", "16")
    assert code == 0
    assert "predicted cost on nrf52840dk" in out and "batch 16" in out
    assert "ram.sample_store" in out and "ram_total" in out and "flash_total" in out
    assert "alternative: upload the samples over BLE" in out and "ble.energy_mj" in out


def test_predict_with_registered_task(capsys):
    code, out, _ = run(capsys, "predict", "--model", "digits_cnn", "--board", "nrf52840dk", "--cut", "pool2",
                       "--hidden", "8", "--samples", "100", "--epochs", "10", "--task", "digits", "--json")
    assert code == 0
    assert json.loads(out)["prediction"]["ram.sample_store"] == 100 * 128


@pytest.mark.parametrize("firmware", ["microtl-dse", "paper"])
def test_predict_firmware_flag_picks_the_model_and_says_so(capsys, firmware):
    code, out, _ = run(capsys, *PREDICT, "--firmware", firmware, "--json")
    assert code == 0 and json.loads(out)["prediction"]["firmware"] == firmware
    code, out, _ = run(capsys, *PREDICT, "--firmware", firmware)
    assert code == 0
    assert ("firmware priced: this project's" if firmware == "microtl-dse"
            else "firmware priced: the paper's published firmware") in out


def test_predict_default_firmware_is_ours_where_the_board_has_a_map(capsys):
    code, out, _ = run(capsys, *PREDICT, "--json")
    assert code == 0 and json.loads(out)["prediction"]["firmware"] == "microtl-dse"


@pytest.mark.parametrize("change, needle", [
    (["--board", "qemu-an386", "--firmware", "paper"], "qemu-an386 runs this project's firmware only"),
    (["--board", "esp32"], "esp32"),
    (["--cut", "conv9"], "conv9"),
    (["--task", "nosuchtask"], "nosuchtask"),
    (["--task", "npz"], "--classes"),
])
def test_predict_user_errors_are_one_line(capsys, change, needle):
    argv = PREDICT[:]
    for flag, value in zip(change[::2], change[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in one_line_error(err)


def test_report_and_show_need_a_study_folder(capsys, tmp_path):
    for command in ("report", "show"):
        code, _, err = run(capsys, command, str(tmp_path / "nothing"))
        assert code == 2
        assert "nothing" in one_line_error(err)
