"""Float network, pretraining cache, q7 quantization vs float, and features at the cut points (digits)."""
import numpy as np
import pytest
import torch

from models.data import load_task
from models.features import dequantize, extract
from models.network import build, predict
from models.pretrain import PretrainParams, cache_root, pretrain
from models.quantize import agreement, forward_int, quantize, quantize_input
from models.simulate import prepare
from models.zoo import get_model


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    # the same directory for every test file of the session, so the in-process caches are shared
    return prepare("digits", "digits_cnn", cache_dir=tmp_path_factory.getbasetemp() / "models-cache")


def test_float_and_int8_accuracy(prepared):
    assert prepared.float_accuracy >= 0.95, f"float source top-1 {prepared.float_accuracy:.1%}"
    data, qmodel = prepared.data, prepared.qmodel
    logits_f = predict(prepared.pretrained.network, data.source_test.x)
    logits_q = forward_int(qmodel, quantize_input(qmodel, data.source_test.x))
    assert logits_q.dtype == np.int8 and logits_q.shape == (len(data.source_test), 7)
    agree = agreement(logits_f, logits_q)
    assert agree >= 0.98, f"int8 vs float top-1 agreement {agree:.1%} on {len(logits_q)} source test images"
    assert agree == prepared.agreement


def test_q7_parameters_are_valid(prepared):
    qmodel = prepared.qmodel
    assert qmodel.scheme == "q7" and qmodel.f_input == 6  # digits in [0, 1]: 64 * x
    for layer in qmodel.layers:
        if layer.kind == "maxpool2d":
            assert layer.f_out == layer.f_in and layer.weights is None
            continue
        assert layer.weights.dtype == np.int8 and layer.bias.dtype == np.int8
        assert layer.bias_shift == layer.f_in + layer.f_w - layer.f_b >= 0
        assert layer.out_shift == layer.f_in + layer.f_w - layer.f_out >= 1
    conv1 = qmodel.layer("conv1")
    assert conv1.weights.shape == (16, 3, 3, 1)  # [out][kh][kw][in]
    assert qmodel.layer("fc1").weights.shape == (64, 128)
    assert [layer.relu_in for layer in qmodel.layers] == [False, True, True, False, True]


def test_flatten_is_channels_last():
    """fc weights index the row-major HWC flatten: a network fed through forward_to + manual HWC matmul agrees."""
    spec = get_model("digits_cnn")
    net = build(spec, seed=3)
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    pooled = predict(net, x, "pool2")  # (4, 2, 2, 32) pre-activation = input of fc1 (pool2 has no relu)
    w, b = net.export()["fc1"]
    manual = pooled.reshape(4, -1) @ w.T + b
    assert pooled.shape == (4, 2, 2, 32)
    np.testing.assert_allclose(predict(net, x, "fc1"), manual, rtol=1e-5, atol=1e-5)
    conv_w, _ = net.export()["conv2"]
    assert conv_w.shape == (32, 3, 3, 16)
    with pytest.raises(ValueError, match="choose one of"):
        net.forward_to(torch.zeros(1, 8, 8, 1), "classifier")


def test_feature_sizes_and_dequantization(prepared):
    spec = get_model("digits_cnn")
    net, qmodel = prepared.pretrained.network, prepared.qmodel
    x = prepared.data.target_test.x
    for cut in spec.cut_points():
        features = extract(qmodel, x, cut)
        assert features.q.dtype == np.int8
        assert features.q.shape == (len(x), spec.feature_size(cut))
        assert features.frac_bits == qmodel.frac_bits(cut)
        error = np.abs(dequantize(features) - predict(net, x, cut).reshape(len(x), -1)) / features.scale
        # the first layer is within one quantization step; deeper cuts accumulate rounding of earlier layers
        limit = 1.0 if cut == "conv1" else 3.0
        assert error.max() <= limit and error.mean() <= 0.5, (cut, error.max(), error.mean())
    assert dequantize(extract(qmodel, x, "pool2")).dtype == np.float32


def test_recurrent_network_quantizes_with_table_one_shapes_and_widths():
    spec = get_model("har_rnn")
    net = build(spec)
    x = np.random.default_rng(0).uniform(0, 1, (4, 128, 9)).astype(np.float32)
    assert predict(net, x, "gru3").shape == (4, 43, 6)  # float path
    qmodel = quantize(net, x)
    x_q = quantize_input(qmodel, x)
    for layer in spec.layers[1:]:  # integer path: every cut point, in its storage width (int16 for gru1, gru2)
        out = forward_int(qmodel, x_q, upto=layer.name)
        assert out.shape == (4, *layer.out_shape) and out.dtype == np.dtype(layer.dtype), layer.name


def test_pretrain_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROTL_CACHE", str(tmp_path / "env-cache"))
    assert cache_root() == tmp_path / "env-cache"
    data = load_task("digits")
    params = PretrainParams(epochs=1)
    first = pretrain(get_model("digits_cnn"), data, params)
    assert not first.loaded and first.path.is_file()
    assert first.path.parent == tmp_path / "env-cache" / "pretrained"
    assert not list(first.path.parent.glob("*.tmp"))
    mtime = first.path.stat().st_mtime_ns
    second = pretrain(get_model("digits_cnn"), data, params)
    assert second.loaded and second.path == first.path and first.path.stat().st_mtime_ns == mtime
    for a, b in zip(first.network.state_dict().values(), second.network.state_dict().values()):
        assert torch.equal(a, b)
    other = pretrain(get_model("digits_cnn"), data, PretrainParams(epochs=1, seed=1))
    assert other.path != first.path and not other.loaded


def test_pretrain_is_deterministic(tmp_path, prepared):
    again = pretrain(get_model("digits_cnn"), prepared.data, cache_dir=tmp_path)
    assert not again.loaded
    for a, b in zip(again.network.state_dict().values(), prepared.pretrained.network.state_dict().values()):
        assert torch.equal(a, b)
