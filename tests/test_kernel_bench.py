"""The sequence kernels' counts model (cost_models/microtl_dse/rnn_counts.py): valid taps of padded convolutions replayed
against a brute-force walk of the C loops; the memory terms of har_rnn against what codegen declares (the
sizes arm-none-eabi-nm reports for dse_act0/1 and the LSTM cell: measured on a gru3 build, 5,504 + 2,752 B and
64 B); and on qemu-an386 the counts fitted on a grid of LSTM/GRU/conv1d calls predict shapes left out of the fit."""
import itertools

import pytest

from cost_models.microtl_dse import rnn_counts as rnn
from models.arena import arena_bytes
from cost_models.microtl_dse import kernel_counts as kc
from firmware import kernel_bench as kb
from models.zoo import LayerSpec, get_model


def _brute_conv(layer):
    """Walk nn_conv1d_q7 / nn_conv2d_q7's loops: (macs, dot calls, tail MACs)."""
    k, s, p = layer.kernel, layer.stride, layer.padding
    cin, cout = layer.in_shape[-1], layer.out_shape[-1]
    macs = calls = tails = 0
    dims = layer.out_shape[:-1]
    for pos in itertools.product(*(range(d) for d in dims)):
        taps = []
        for o, n in zip(pos, layer.in_shape[:-1]):
            taps.append([t for t in range(k) if 0 <= o * s + t - p < n])
        runs = [len(taps[-1]) * cin] * (len(taps[0]) if len(dims) == 2 else 1)
        for _ in range(cout):
            for run in runs:
                macs += run
                calls += 1
                tails += run % 4
    return macs, calls, tails


@pytest.mark.parametrize("layer", [
    LayerSpec("a", "conv1d", (128, 9), (43, 9), 3, 3, 1),
    LayerSpec("b", "conv1d", (40, 3), (40, 5), 5, 1, 2),
    LayerSpec("c", "conv1d", (90, 1), (23, 10), 9, 4, 4),
    LayerSpec("d", "conv2d", (9, 7, 2), (5, 4, 3), 3, 2, 1),
    LayerSpec("e", "conv2d", (8, 8, 1), (6, 6, 16), 3, 1, 0),
])
def test_conv_counts_follow_valid_taps(layer):
    c = rnn.conv_counts(layer)
    assert (c["macs"], c["dot_calls"], c["dot_tail_macs"]) == _brute_conv(layer)
    if layer.padding == 0:
        assert c["macs"] == layer.macs  # no padding: every tap is multiplied


def test_recurrent_counts_follow_the_loops():
    har = get_model("har_rnn")
    gru2 = har.layer("gru2")  # int16 in, int16 out: 43 steps, 64 -> 32
    c = rnn.recurrent_counts(gru2, 16)
    assert c["rnn_macs_16"] == 43 * 96 * 64 + 42 * 96 * 32 and c["rnn_macs_8"] == 0
    assert c["rnn_dot_calls"] == 43 * 96 + 42 * 96  # h(-1) = 0: no recurrent dot product at the first step
    assert (c["gru_unit_steps"], c["lstm_unit_steps"], c["rnn_steps"]) == (43 * 32, 0, 43)
    lstm = rnn.recurrent_counts(har.layer("lstm1"), 8)
    assert lstm["rnn_macs_8"] == 43 * 128 * 9 + 42 * 128 * 32 and lstm["lstm_unit_steps"] == 43 * 32
    # all of a layer's MACs, by the width of the vector read
    assert c["rnn_macs_16"] == gru2.macs - 96 * 32  # macs counts the first step's recurrent part too


def test_memory_terms_of_har_rnn():
    layers = (get_model("har_rnn").layers[0], *get_model("har_rnn").layers_up_to("gru3"))
    # the frozen arena's peak: gru1's int16 output (its input gone) beside gru2's (models/arena.py)
    assert arena_bytes(layers) == 5504 + 2752
    assert rnn.state_bytes(layers) == 64  # lstm1_cell[32], int16
    gru1 = get_model("har_rnn").layer("gru1")
    assert rnn.weight_bytes(gru1, bias_bytes=1) == 3 * 64 * (32 + 64) + 2 * 6 * 64  # q15 biases whatever the scheme


def test_kernel_counts_predict_unseen_shapes_on_qemu(tmp_path):
    from qemu_fw_util import require_tools

    require_tools()
    shapes = [kb.KernelShape(kind, steps, in_dim, units, *bits)
              for kind in ("lstm", "gru")
              for steps, in_dim, units, bits in ((3, 5, 4, (8, 8)), (11, 9, 13, (16, 16)), (3, 24, 32, (8, 16)),
                                                 (11, 5, 32, (16, 8)), (7, 17, 6, (8, 8)), (5, 9, 20, (16, 16)),
                                                 (9, 3, 9, (8, 8)), (4, 12, 16, (16, 16)))]
    shapes += [kb.KernelShape("conv1d", n, cin, cout, kernel=k, stride=s, padding=p)
               for n, cin, cout, k, s, p in ((128, 9, 9, 3, 3, 1), (40, 3, 5, 5, 1, 2), (33, 6, 4, 3, 2, 0),
                                             (64, 2, 16, 7, 2, 3), (50, 9, 12, 3, 1, 1), (20, 16, 8, 2, 2, 0),
                                             (75, 4, 6, 5, 3, 2))]
    runs = kb.measure(shapes, tmp_path)
    assert all(r.instructions > 1000 for r in runs)
    for kind, bound in (("lstm", 0.005), ("gru", 0.005), ("conv1d", 0.02)):
        errors = [e for _, e in kc.leave_one_out([r for r in runs if r.shape.kind == kind])]
        assert max(map(abs, errors)) < bound, (kind, errors)
    # a MAC costs the same instructions whether the sequence is int8 or int16 (ldrsb / ldrsh)
    coef = kc.fit([r for r in runs if r.shape.kind == "gru"])
    assert coef["rnn_macs_8"] == pytest.approx(coef["rnn_macs_16"], rel=0.02)


def test_image_kernel_counts_are_the_cost_models():
    """call_counts of conv2d / maxpool2d / fc / relu are microtl_dse.model's frozen counts of that one layer (macs by
    kind, calls = layer_calls; fc's dot_calls and output_elements are one `outputs` term)."""
    from dataclasses import replace

    from cost_models.microtl_dse import model as fm
    from cost_models.workload import build_workload

    base = build_workload("digits_cnn", "conv1", 3, 0, 50, 10, 8, False, "q7")
    for shape in kb.image_grid():
        layer = shape.layer()
        if shape.kind == "relu":  # the ReLU codegen applies to a layer's output before the next layer
            frozen = fm._frozen_counts(replace(base, layers=(layer, LayerSpec("next", "input", (1,), (1,)))))
            assert kc.call_counts(shape) == {"relu_elements": frozen["relu_elements"], "calls": 1}
            continue
        frozen = {k: v for k, v in fm._frozen_counts(replace(base, layers=(
            LayerSpec("in", "input", layer.in_shape, layer.in_shape), layer))).items() if v}
        mine = dict(kc.call_counts(shape))
        mine[f"macs_{shape.kind}"] = mine.pop("macs", 0)
        mine["layer_calls"] = mine.pop("calls")
        if "outputs" in mine:
            mine["dot_calls"] = mine["output_elements"] = mine.pop("outputs")
        assert {k: v for k, v in mine.items() if v} == frozen, shape.name


def _dot_runs(layer: LayerSpec) -> list[tuple[int, int]]:
    """(run length, nn_dot calls of that length) of one conv1d / conv2d / fc call, from the valid taps as
    cost_models.microtl_dse.rnn_counts.conv_counts walks them (their sums are its macs and dot_calls)."""
    if layer.kind == "fc":
        return [(layer.macs // max(layer.elements, 1), layer.elements)]
    k, s, p = layer.kernel, layer.stride, layer.padding
    cin, cout = layer.in_shape[-1], layer.out_shape[-1]
    if layer.kind == "conv1d":
        return [(c * cin, cout) for c in rnn.valid_taps(layer.out_shape[0], s, p, k, layer.in_shape[0])]
    rows = rnn.valid_taps(layer.out_shape[0], s, p, k, layer.in_shape[0])
    cols = rnn.valid_taps(layer.out_shape[1], s, p, k, layer.in_shape[1])
    return [(c * cin, cout * r) for r in rows for c in cols]


@pytest.mark.parametrize("shape", [s for s in kb.default_grid() if s.kind in ("conv1d", "conv2d", "fc")],
                         ids=lambda s: s.name)
def test_dot_runs_sum_to_the_conv_counts(shape):
    runs = _dot_runs(shape.layer())
    c = kc.call_counts(shape)
    assert sum(r * n for r, n in runs) == c["macs"]
    assert sum(n for _, n in runs) == c.get("dot_calls", c.get("outputs"))
    assert sum(r % 4 * n for r, n in runs) == c["dot_tail_macs"]


def test_image_kernel_counts_predict_unseen_shapes_on_qemu(tmp_path):
    """conv2d / maxpool2d / fc / relu alone over the image grid (47 calls, about 2 s). Bounds from the measurements
    of 2026-11-22 (benchmarks/kernel_counts.py's run / this test's, whose pools hold other values), with margin: the
    worst left-out conv2d shape is 0.05% / 0.10% off, maxpool2d 0.16% / 0.11%, fc 2.4% / 1.4% (its smallest call, 88
    instructions, and its saturation branches), relu 1 / 0 instructions. Before the cost model counted nn_dot's
    unrolled-loop entries and the output rows, conv2d was 24% off (digits_cnn's conv1: its 3-MAC dot products skip
    nn_dot's unrolled loop) and maxpool2d 2.4%."""
    from qemu_fw_util import require_tools

    require_tools()
    runs = kb.measure(kb.image_grid() + kb.relu_sign_grid(), tmp_path)
    assert all(r.instructions > 10 for r in runs)

    def worst(kind):
        errors = [e for _, e in kc.leave_one_out([r for r in runs if r.shape.kind == kind and r.shape.sign == 0])]
        return max(map(abs, errors))

    for kind, bound in (("conv2d", 0.005), ("maxpool2d", 0.005), ("fc", 0.04)):
        assert worst(kind) < bound, kind
    relu = [r for r in runs if r.shape.kind == "relu" and r.shape.sign == 0]
    assert max(abs(e) * r.instructions for r, e in kc.leave_one_out(relu)) <= 3  # instructions (relu/1: 20)
    # nn_dot's unrolled loop: 17 instructions per 4 MACs, whichever kernel calls it
    for kind in ("conv2d", "fc"):
        coef = kc.fit([r for r in runs if r.shape.kind == kind])
        assert coef["macs"] == pytest.approx(4.25, rel=0.01), kind
    # ReLU's conditional store is an IT block: the same instructions whatever the data's signs (+-1 measured)
    by_shape = {r.shape: r.instructions for r in runs}
    for s in kb.relu_sign_grid():
        assert abs(by_shape[s] - by_shape[kb.KernelShape.relu(s.in_dim)]) <= 2, s.name


def test_fast_kernel_counts_predict_unseen_shapes_on_qemu(tmp_path):
    """The Cortex-M4 DSP kernels (cost_models/microtl_dse/dsp_counts.py's counts) over the default and the fast grid (about
    290 calls, 10 s). Bounds from benchmarks/kernel_counts.py's run of 2026-12-06 with margin: leave-one-shape-out
    worst lstm 0.32%, gru 0.45%, maxpool2d 0.38%, conv1d 12.6% (conv1d/5x1/o1/k3s1p1: 1,298 instructions), conv2d
    6.1% (a 1x1 kernel over 10 channels), fc 33% (fc/5/r1: 134 instructions), means 1.05% / 0.97% / 1.7%; in-sample
    conv1d 1.5%, conv2d 1.1%, fc 5.3%. The hand-written
    inner loops are exact: 21 instructions per 2x2 group (nn_block2) and 8 per ReLU word."""
    from qemu_fw_util import require_tools

    require_tools()
    runs = kb.measure(kb.default_grid() + kb.fast_grid(), tmp_path, kernels="fast")

    def errors(kind, loo=True):
        rs = [r for r in runs if r.shape.kind == kind and r.shape.sign == 0]
        if loo:
            return [abs(e) for _, e in kc.leave_one_out(rs, "fast")]
        coef = kc.fit(rs, "fast")
        return [abs(kc.predict(coef, r.shape, "fast") / r.instructions - 1) for r in rs]

    for kind, bound in (("lstm", 0.005), ("gru", 0.006), ("maxpool2d", 0.005)):
        assert max(errors(kind)) < bound, kind
    for kind, bound in (("conv1d", 0.02), ("conv2d", 0.015), ("fc", 0.06)):
        assert max(errors(kind, loo=False)) < bound, kind
    # the mean left-out error of the image kernels (the worst are the smallest calls)
    for kind, bound in (("conv2d", 0.012), ("fc", 0.02), ("conv1d", 0.013)):
        e = errors(kind)
        assert sum(e) / len(e) < bound, kind
    relu = {r.shape.in_dim: r.instructions for r in runs if r.shape.kind == "relu"}
    assert relu[3000] - relu[1000] == 8 * 500  # four bytes per word, 8 instructions


def test_fast_collection_counts_follow_the_dsp_loops():
    """cifar_cnn to conv3 on a cortex-m4 board: the fused conv1 -> pool1 computes 15 pool rows x 2 conv rows x 30
    pixels two at a time (RGB: staged patches of K = 27, a tail of 3), 64 output channels in pairs; pools of 64 / 32
    channels run word-wise; no portable MAC is counted. The host board counts the portable loops."""
    from cost_models.microtl_dse import model as fm
    from cost_models.workload import build_workload

    w = build_workload("cifar_cnn", "conv3", 3, 16, 40, 4, 8, True, "q7")
    fast, portable = fm._frozen_counts(w, "cortex-m4"), fm._frozen_counts(w, "portable")
    assert fast == fm._frozen_counts(w, "cortex-m4") and portable == fm._frozen_counts(w)
    assert fast["macs_conv2d"] == fast["compares"] == fast["relu_elements"] == 0 and portable["macs_conv2d"] > 0
    assert all(portable[k] == 0 for k in ("m4_b2_groups", "m4_pool_maxes", "m4_relu_words"))
    cifar = get_model("cifar_cnn")
    conv1, conv2, conv3 = (cifar.layer(n) for n in ("conv1", "conv2", "conv3"))
    assert fast["m4_staged_patches"] == 15 * 2 * conv1.out_shape[1]  # only conv1 has in_ch % 4 != 0
    pairs = 15 * 30 + 6 * conv2.out_shape[1] + conv3.out_shape[0] * conv3.out_shape[1] // 2
    assert fast["m4_pixel_pairs"] == pairs
    # every MAC of the 2x2 blocks: groups x 4 MACs x 4 (two pixels, two channels) plus the zero-padded tails
    k1 = 3 * 3 * 3
    assert fast["m4_b2_groups"] == 15 * 30 * 32 * (k1 // 4) + 6 * 13 * 16 * (9 * 64 // 4) + 8 * 8 * (9 * 32 // 4)
    assert fast["m4_b2_tail_gt2"] == 15 * 30 * conv1.out_shape[-1] // 2 * (k1 % 4 > 2)
    assert fast["m4_pool_words"] == 15 * 15 * 64 // 4 + 6 * 6 * 32 // 4
    assert fast["m4_relu_words"] == (15 * 15 * 64 + 6 * 6 * 32) // 4 and fast["m4_relu_bytes"] == 0
    assert fast["layer_calls"] == portable["layer_calls"] == 2 * 15 + 2 * 6 + 1
