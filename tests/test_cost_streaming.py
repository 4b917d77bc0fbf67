"""Streaming (TinyOL) in the cost models (issue 14): the steps' counts follow the firmware's schedule, the RAM terms
are the arrays streaming builds declare (ELF), the shipped streaming runs are predicted, the paper's firmware refuses
the mode, and a prediction of streaming says what one collected sample costs."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from cost_models.microtl_dse import model as fm
from cost_models.microtl_dse.fit import deployed_view, load_firmware_calibration, predict_run
from cost_models.predict import predict, price
from cost_models.microtl_dse.runs import load_runs
from firmware.run_records import append_rows, make_rows
from vocabulary.run_records import run_key
from cost_models.workload import workload_from_config
from vocabulary.configuration import STREAMING_FIXED, Configuration

SHIPPED = Path(__file__).resolve().parents[1] / "cost_models" / "calibration" / "qemu-an386"
PROV = {"source": "test", "sources_sha256": "s", "elf_sha256": "e", "toolchain": "t", "emulator": "q",
        "date": "2026-12-06"}
needs_arm = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")


def streaming(cut="pool2", hidden=8, samples=200, replay=8, momentum=0.9, model="digits_cnn", task="digits"):
    return Configuration(task, model, cut, hidden=hidden, samples=samples, momentum=momentum, mode="streaming",
                         replay=replay, **STREAMING_FIXED)


def stored(cut="pool2", hidden=8, samples=200, momentum=0.9):
    return Configuration("digits", "digits_cnn", cut, hidden=hidden, samples=samples, epochs=10, batch=8,
                         momentum=momentum)


@pytest.mark.parametrize("n,k", [(1, 0), (30, 0), (30, 4), (30, 29), (30, 30), (200, 32), (5, 3)])
def test_steps_follow_the_schedule(n, k):
    """Sample i trains once on itself and once on each of the min(i, K) ring entries before it is pushed."""
    w = workload_from_config(streaming(samples=n, replay=k), 3)
    ring: list[int] = []
    steps = 0
    for i in range(n):  # the firmware's loop: step, ring entries, push (evicting the oldest)
        steps += 1 + len(ring)
        ring = (ring + [i])[-k:] if k else ring
    assert w.steps == steps and w.ring_steps == steps - n
    assert workload_from_config(stored(samples=max(n, 2)), 3).steps == 0


@pytest.mark.parametrize("hidden,momentum,replay", [(0, 0.9, 0), (8, 0.0, 8), (32, 0.9, 32)])
def test_training_counts_are_batch_one_steps(hidden, momentum, replay):
    c = streaming(hidden=hidden, momentum=momentum, replay=replay, samples=60)
    w = workload_from_config(c, 3)
    t = fm.instruction_counts("training", w, 1, 0)
    f_in, f_out = w.head[0]
    assert t["stream_forward_macs"] == w.steps * w.head_macs and t["stream_gradient_macs"] == w.steps * f_in * f_out
    assert t["stream_train_samples"] == w.steps
    assert t["stream_hidden_macs"] == w.steps * (hidden * 3 if hidden else 0)
    updates = ("stream_parameter_updates", "stream_direct_updates")
    assert t[updates[momentum == 0]] == w.steps * w.head_params and t[updates[momentum > 0]] == 0
    # a step's loops are the stored trainer's for one sample (its counts at batch 1, per step)
    one = fm.instruction_counts("training", workload_from_config(
        Configuration("digits", "digits_cnn", "pool2", hidden=hidden, samples=2, epochs=1, batch=1,
                      momentum=momentum, restore_best=False), 3), 1, 0)  # 1 training + 1 validation sample
    for k in ("gradient_macs", "hidden_macs", "parameter_updates", "direct_updates", "gradient_rows",
              "hidden_gradients"):
        assert t[f"stream_{k}"] == w.steps * one[k], k
    for k in fm.COUNTS["training"]:  # nothing of stored mode's trainer
        assert k.startswith(("stream_", "ring_")) or t[k] == 0, k
    assert t["stream_samples"] == 60 and t["ring_steps"] == w.ring_steps and t["stream_constant"] == 1
    assert t["ring_pushes"] == (60 if replay else 0) and t["ring_push_bytes"] == t["ring_pushes"] * 128
    assert t["stream_parameters"] == w.head_params
    # collection: the same frozen forwards as stored mode, bracketed per sample (overheads of their own)
    col, col_stored = fm.instruction_counts("collection", w, 1, 0), fm.instruction_counts(
        "collection", workload_from_config(stored(hidden=hidden, samples=60), 3), 1, 0)
    assert {k: v for k, v in col.items() if k in fm._FROZEN} == {k: v for k, v in col_stored.items()
                                                                  if k in fm._FROZEN}
    assert (col["samples"], col["constant"], col["stream_samples"], col["stream_constant"]) == (0, 0, 60, 1)
    # stored mode has none of streaming's own counts
    st = fm.instruction_counts("training", workload_from_config(stored(), 3), 5, 0)
    assert all(st[k] == 0 for k in fm.STREAM_TRAINING)


def test_ram_terms_have_no_store_and_a_ring():
    w = workload_from_config(streaming(replay=8), 3)
    ram = fm.ram_terms(w)
    for t in ("sample_store", "labels", "shuffle_index", "best_weights", "stored_runtime"):
        assert ram[t] == 0, t
    assert ram["ring"] == 8 * (128 + 1) + 8 and ram["stream_runtime"] == 1
    assert ram["update_buffer"] == ram["head_weights"] == 4 * w.head_params
    assert fm.train_work_bytes(w) == ram["update_buffer"] + ram["train_activations"]
    # arena and work region side by side (both live through the collection)
    from models.arena import arena_bytes

    assert fm.region_bytes(w) == (arena_bytes(w.layers) + 3) // 4 * 4 + fm.train_work_bytes(w)
    assert ram["frozen_arena"] + ram["update_buffer"] + ram["train_activations"] == fm.region_bytes(w)
    assert fm.ram_terms(workload_from_config(streaming(replay=0), 3))["ring"] == 0
    flash = fm.flash_terms(w)
    assert (flash["epoch_loop_code"], flash["stream_code"], flash["ring_code"]) == (0, 1, 1)
    assert fm.flash_terms(workload_from_config(stored(), 3))["epoch_loop_code"] == 1


def _symbol_sizes(path) -> dict[str, int]:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as fh:
        return {s.name: s["st_size"] for s in ELFFile(fh).get_section_by_name(".symtab").iter_symbols()}


@needs_arm
@pytest.mark.parametrize("cut,hidden,replay,momentum", [("pool2", 8, 8, 0.9), ("conv1", 0, 0, 0.0)])
def test_ram_terms_are_the_streaming_elf_arrays(tmp_path, cut, hidden, replay, momentum):
    """A streaming build declares what the RAM model prices: one region of arena + work bytes, the ring of K
    features and labels (none at K = 0), no sample store and no labels array."""
    from firmware.build import build
    from firmware.codegen import generate

    config = streaming(cut=cut, hidden=hidden, replay=replay, momentum=momentum, samples=20)
    gen = generate(config, tmp_path / "gen", test_limit=5)
    sizes = _symbol_sizes(build(gen, "cortex-m4", tmp_path / "m4").path)
    w = workload_from_config(config)
    raw = fm.ram_terms(w)
    assert sizes["dse_arena"] == fm.region_bytes(w) == raw["frozen_arena"] + sum(raw[t] for t in fm.WORK_TERMS)
    assert "mt_store" not in sizes and "labels" not in sizes
    if replay:
        assert sizes["mt_ring"] == replay * w.feature_bytes and sizes["mt_ring_labels"] == replay
        assert raw["ring"] == sizes["mt_ring"] + sizes["mt_ring_labels"] + sizes["mt_ring_count"] + \
            sizes["mt_ring_next"]
    else:
        assert "mt_ring" not in sizes and raw["ring"] == 0


def test_shipped_streaming_runs_are_predicted():
    """The committed campaign's streaming runs (every count observed): instructions per phase within 0.5% in
    sample, the deployed image's RAM within 1% and flash within 1%."""
    runs = [r for r in deployed_view(load_runs(SHIPPED / "campaign.csv")) if r.config.streaming]
    assert len({r.key for r in runs}) >= 20
    cal = load_firmware_calibration("qemu-an386", SHIPPED)
    assert all(cal.status["training"][k] == "fitted" for k in fm.STREAM_TRAINING)
    for r in runs:
        if r.metric == "instructions":
            assert abs(predict_run(cal, r) / r.value - 1) < 0.005, (r.key, r.phase)
        elif r.metric in ("deployed_ram", "deployed_flash"):
            assert abs(predict_run(cal, r) / r.value - 1) < 0.01, (r.key, r.metric)


def test_paper_firmware_refuses_streaming():
    c = streaming()
    with pytest.raises(ValueError, match="mode 'streaming'"):
        predict(c, "nrf52840dk", firmware="paper")
    from cost_models.board import load_board
    from cost_models.paper.calibration import load_calibration

    board = load_board("nrf52840dk")
    with pytest.raises(ValueError, match="mode"):
        price(workload_from_config(c), board, load_calibration(board), 1)
    assert predict(stored(), "nrf52840dk", firmware="paper").mode == "stored"


@pytest.mark.parametrize("board", ["qemu-an386", "nrf52840dk"])
def test_predict_streaming_needs_less_ram_and_prices_a_sample(board):
    s = predict(streaming(samples=200, replay=8), board, test_inputs=0)
    t = predict(stored(samples=200), board, epochs_run=10, test_inputs=0)
    assert s.mode == "streaming" and t.mode == "stored"
    assert s.ram_total < t.ram_total and s.ram["sample_store"] == 0
    ins = s.instructions
    assert s.sample_instructions == pytest.approx((ins["collection"] + ins["training"]) / 200)
    assert t.sample_instructions is None and t.sample_latency_s is None
    d = s.to_dict()
    assert d["mode"] == "streaming" and d["sample_instructions"] == s.sample_instructions
    if board == "nrf52840dk":  # timed: latency per collected sample, total energy = the phases' sum
        sec = s.phases["collection"].seconds + s.phases["training"].seconds
        assert s.sample_latency_s == pytest.approx(sec / 200) and d["sample_latency_s"] == s.sample_latency_s
        assert s.energy_mj == pytest.approx(sum(s.phases[p].energy_mj for p in s.phases_included))
    else:
        assert s.sample_latency_s is None and "sample_latency_s" not in d


def test_run_records_keep_the_mode(tmp_path):
    """Streaming rows round-trip (mode and replay in their key and columns); a file written before the columns
    existed gains them when a streaming row is appended (its old rows read as stored, replay 0)."""
    c = streaming(samples=40, replay=4)
    key = run_key(c, 3, 10)
    assert "/streaming-r4/" in key and key != run_key(stored(samples=40), 3, 10)
    path = tmp_path / "new.csv"
    append_rows(path, make_rows("qemu-an386", c, 3, 10, 1, 1, {"instructions.training": 1000}, PROV, improvements=0))
    r = load_runs(path)[0]
    assert r.config == c and r.shape[-1] == "streaming"
    old = tmp_path / "old.csv"
    rows = make_rows("qemu-an386", stored(samples=40), 3, 10, 5, 4, {"flash": 1000}, PROV)
    columns = [k for k in rows[0] if k not in ("mode", "replay")]
    with old.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    append_rows(old, make_rows("qemu-an386", stored(samples=50), 3, 10, 5, 4, {"flash": 1000}, PROV))
    assert "mode" not in next(csv.reader(old.open()))  # stored rows need no new column
    append_rows(old, make_rows("qemu-an386", c, 3, 10, 1, 1, {"flash": 1000}, PROV))
    loaded = load_runs(old)
    assert [r.config.mode for r in loaded] == ["stored", "stored", "streaming"]
    assert loaded[-1].config == c and loaded[0].config == stored(samples=40)
