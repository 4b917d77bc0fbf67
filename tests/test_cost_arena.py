"""The frozen arena's liveness plan (models/arena.py): the steps codegen emits, placement without overlap of
buffers live together, the issue's CIFAR target, and the RAM model pricing exactly the plan."""
import itertools

import numpy as np
import pytest

from cost_models.microtl_dse import model as fm
from models.arena import ALIGN, arena_bytes, band_rows, plan_arena, steps_of
from models.kernels import scratch_bytes
from cost_models.workload import build_workload
from models.zoo import LayerSpec, _Builder, get_model, list_models

ZOO_CUTS = [(m.name, cut) for m in list_models() for cut in m.cut_points()]


def _check_plan(layers):
    plan = plan_arena(layers)
    for b in plan.buffers:
        assert b.offset % ALIGN == 0 and b.offset + b.size <= plan.size, b
    for a, b in itertools.combinations(plan.buffers, 2):
        if a.first <= b.last and b.first <= a.last:  # live together: disjoint bytes
            assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
    assert plan.size % ALIGN == 0 and plan.size >= plan.peak_live()
    # every step reads what the step before wrote; the first reads the caller's input, the last writes the feature
    assert plan.steps[0].src == "input" and plan.steps[-1].dst == "feature"
    for s, t in zip(plan.steps, plan.steps[1:]):
        assert t.src == s.dst and plan.buffer(s.dst).last == plan.steps.index(t)
    return plan


@pytest.mark.parametrize("model,cut", ZOO_CUTS, ids=[f"{m}-{c}" for m, c in ZOO_CUTS])
def test_zoo_plans_place_live_buffers_apart(model, cut):
    _check_plan(get_model(model).layers_up_to(cut))


def test_cifar_cut_conv3_within_25kB():
    """Issue 10's target: 25 KB or less (the ping-pong buffers held 72,000 B: conv1's 57,600 + pool1's 14,400)."""
    plan = _check_plan(get_model("cifar_cnn").layers_up_to("conv3"))
    assert [s.layers for s in plan.steps] == [("conv1", "pool1"), ("conv2", "pool2"), ("conv3",)]
    names = {b.name for b in plan.buffers}
    assert "conv1.out" not in names and "conv2.out" not in names  # the fused convs' outputs never exist
    assert plan.buffer("conv1.band").size == 2 * 30 * 64 and plan.buffer("pool1.out").size == 15 * 15 * 64
    # step 2 (conv2 -> pool2) holds pool1's output, conv2's band and scratch and pool2's output: the peak
    conv2 = get_model("cifar_cnn").layer("conv2")
    assert plan.peak_live() == 14400 + 2 * 13 * 32 + scratch_bytes(conv2) + 1152
    assert plan.size == plan.peak_live() <= 25 * 1024


def test_cut_at_a_conv_is_not_fused():
    plan = plan_arena(get_model("cifar_cnn").layers_up_to("conv2"))
    assert [s.layers for s in plan.steps] == [("conv1", "pool1"), ("conv2",)]
    assert plan.steps[-1].dst == "feature" and plan.steps[-1].band is None
    assert [s.layers for s in plan_arena(get_model("cifar_cnn").layers_up_to("conv1")).steps] == [("conv1",)]


def test_band_rows_skip_cropped_and_repeat_overlapping():
    cifar = get_model("cifar_cnn")
    # conv2: 13 rows, pool 2/2 -> 6 rows: row 12 is never read, so never computed
    assert band_rows(cifar.layer("conv2"), cifar.layer("pool2")) == list(range(12))
    conv = LayerSpec("c", "conv2d", (9, 9, 2), (7, 7, 4), 3)
    pool = LayerSpec("p", "maxpool2d", (7, 7, 4), (3, 3, 4), 3, 2)  # k 3, stride 2: rows 2 and 4 twice
    assert band_rows(conv, pool) == [0, 1, 2, 2, 3, 4, 4, 5, 6]
    plan = plan_arena([conv, pool])
    assert plan.steps[0].fused and plan.buffer("c.band").size == 3 * 7 * 4


@pytest.mark.parametrize("seed", range(30))
def test_random_chains_place_live_buffers_apart(seed):
    rng = np.random.default_rng(seed)
    b = _Builder((int(rng.integers(12, 20)), int(rng.integers(12, 20)), int(rng.integers(1, 4))))
    for i in range(int(rng.integers(1, 6))):
        h, w, _ = b.shape
        kind = rng.choice(["conv", "conv", "pool"]) if min(h, w) >= 4 else "conv1x1"
        if kind == "conv":
            b.conv2d(f"c{i}", int(rng.integers(1, 9)), 3, padding=int(rng.integers(0, 2)))
        elif kind == "pool":
            b.maxpool2d(f"p{i}")
        else:
            b.conv2d(f"c{i}", int(rng.integers(1, 9)), 1)
    b.fc("fc", int(rng.integers(1, 20)))
    layers = b.layers[1:]
    for n in range(1, len(layers) + 1):
        plan = _check_plan(layers[:n])
        fused = sum(s.fused for s in plan.steps)
        assert fused == sum(a.kind == "conv2d" and c.kind == "maxpool2d" for a, c in zip(layers[:n], layers[1:n]))


def test_steps_group_conv_pool_pairs_only():
    digits = get_model("digits_cnn")
    assert [tuple(x.name for x in g) for g in steps_of(digits.layers_up_to("fc1"))] == [
        ("conv1",), ("conv2", "pool2"), ("fc1",)]
    with pytest.raises(ValueError, match="no frozen layer"):
        plan_arena(digits.layers[:1])


@pytest.mark.parametrize("model,cut", ZOO_CUTS, ids=[f"{m}-{c}" for m, c in ZOO_CUTS])
def test_ram_model_prices_exactly_the_plan(model, cut):
    w = build_workload(model, cut, 3, 16, 40, 4, 8, True, "q7")
    raw = fm.ram_terms(w)
    arena = arena_bytes(get_model(model).layers_up_to(cut))
    # one region for the frozen arena and mt_train's work: the larger of the two, 4-byte aligned
    assert raw["frozen_arena"] + sum(raw[t] for t in fm.WORK_TERMS) == max(-(-arena // 4) * 4, fm.train_work_bytes(w))
    assert "frozen_arena" in fm.FIXED_GROUPS  # the bytes the C declares, never scaled by a fit


def test_collection_counts_follow_the_fused_calls():
    """cifar_cnn to conv3 as codegen calls it: per pool row one nn_conv2d_rows_q7 and one nn_maxpool2d_q7 call;
    conv2's row 12 (floor-cropped by pool2) is never computed; the ReLUs run on the pools' outputs."""
    cifar = get_model("cifar_cnn")
    c = fm._frozen_counts(build_workload("cifar_cnn", "conv3", 3, 16, 40, 4, 8, True, "q7"))
    assert c["layer_calls"] == 2 * 15 + 2 * 6 + 1
    conv1, conv2, conv3 = (cifar.layer(n) for n in ("conv1", "conv2", "conv3"))
    assert c["macs_conv2d"] == conv1.macs + conv2.macs * 12 // 13 + conv3.macs
    assert c["relu_elements"] == 15 * 15 * 64 + 6 * 6 * 32
    assert c["rows"] == (30 + 15) + (12 + 6) + 4
    # a cut at the conv is not fused: its full output, one call
    c2 = fm._frozen_counts(build_workload("cifar_cnn", "conv2", 3, 16, 40, 4, 8, True, "q7"))
    assert c2["layer_calls"] == 2 * 15 + 1 and c2["macs_conv2d"] == conv1.macs + conv2.macs
