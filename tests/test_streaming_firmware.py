"""Streaming mode (TinyOL, issue 14) through the firmware: on qemu-an386 (and the host board) the board equals the
bit-exact replay (models.head_replay) and the study's simulation of the same draw; the features are stored mode's;
the phases keep their meaning (training = every SGD step, collection = the frozen forwards); the deployed image has
no sample store and a ring of K features."""
from __future__ import annotations

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from firmware.boards import get_board
from firmware.build import build
from firmware.codegen import fnv1a32, generate
from firmware.protocol import ProtocolError, marker_spans, parse
from vocabulary.configuration import Configuration
from models.data import draw_samples
from models.head import stream_schedule
from models.simulate import simulate

from qemu_fw_util import require_tools


def streaming(task="digits", model="digits_cnn", cut="fc1", **kw) -> Configuration:
    return Configuration(task, model, cut, epochs=1, batch=1, restore_best=False, mode="streaming", **kw)


CONFIGS = {
    # hidden 0 / > 0; replay 0, small K, K >= N - 1; momentum 0 (no update buffer) and 0.9; a CNN and an RNN
    "fc1-h0-k0-m.9": streaming(cut="fc1", hidden=0, samples=30, replay=0, momentum=0.9),
    "pool2-h8-k4-m0": streaming(cut="pool2", hidden=8, samples=24, replay=4, momentum=0.0, lr=0.03),
    "fc1-h0-kN-m0": streaming(cut="fc1", hidden=0, samples=12, replay=12, momentum=0.0, lr=0.02),
    "conv2-h16-kN1-m.9": streaming(cut="conv2", hidden=16, samples=10, replay=9, momentum=0.9),
    "motions-gru2-h8-k3-m.9": streaming("basicmotions", "motions_rnn", "gru2", hidden=8, samples=16, replay=3,
                                        momentum=0.9),
}
TEST_LIMIT = 40
SEED = 5


def steps_of(n: int, k: int) -> int:
    return sum(1 + min(i, k) for i in range(n))


@pytest.fixture(scope="module")
def qemu_runs(tmp_path_factory):
    require_tools()
    board = get_board("qemu-an386")
    out = {}
    for name, config in CONFIGS.items():
        d = tmp_path_factory.mktemp(name)
        gen = generate(config, d / "gen", repeat=1, seed=SEED, test_limit=TEST_LIMIT)
        binary = build(gen, "cortex-m4", d / "m4", ["DSE_TRACE_WEIGHTS"], platform="qemu")
        out[name] = gen, binary, board.run(binary, timeout_s=board.timeout_for(5e8))
    return out


@pytest.mark.parametrize("name", list(CONFIGS))
def test_board_equals_replay_and_simulation(qemu_runs, name):
    config = CONFIGS[name]
    gen, _, run = qemu_runs[name]
    assert run.exit_code == 0
    report = run.report()
    assert (report.mode, report.replay) == ("streaming", config.replay)
    assert (report.samples, report.train, report.val) == (config.samples, config.samples, 0)
    assert report.features_fnv1a == gen.expected_fnv1a
    assert report.correct == gen.replayed_correct and report.accuracy == gen.replayed_accuracy
    assert weights_fnv(run) == gen.replayed_weights_fnv1a  # the kept weights, bit for bit
    assert report.steps == gen.replayed_steps == steps_of(config.samples, config.replay)
    assert (report.epochs_run, report.best_epoch, report.improvements) == (1, 1, 0)
    # the study's simulation of this draw is the replay's arithmetic: the same accuracy, exactly
    assert gen.simulated_accuracy == gen.replayed_accuracy and gen.simulated_correct == gen.replayed_correct
    assert simulate(config, 2, SEED).per_repeat[1] == accuracy_on_all_tests(config)


def weights_fnv(run) -> int:
    [event] = [o for o in run.lines if o.get("event") == "weights"]
    return int(event["fnv1a"], 16)


def accuracy_on_all_tests(config: Configuration) -> float:
    """codegen's replayed accuracy of repeat 1 over the whole test split (simulate evaluates on all of it)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return generate(config, tmp, repeat=1, seed=SEED).replayed_accuracy


@pytest.mark.parametrize("name", list(CONFIGS))
def test_phases_count_steps_and_forwards(qemu_runs, name):
    """training = mt_stream_begin and every mt_stream_sample; collection = the frozen forwards (the marker layout
    of firmware.protocol.marker_spans); the cycle estimate covers the same three phases."""
    _, _, run = qemu_runs[name]
    ins = run.instructions
    assert set(ins) == {"collection", "training", "evaluation"} and all(v > 0 for v in ins.values())
    assert run.cycles_estimate is not None and set(run.cycles_estimate) == set(ins)


def test_collection_equals_stored_builds_collection(qemu_runs, tmp_path):
    """The same draw in stored mode (its store order: training rows, then validation rows): the frozen forwards
    retire the same instructions whatever the order; the streaming loop differs by its three marker calls per
    sample against stored mode's store-row call and label store: within the count of the markers."""
    name = "pool2-h8-k4-m0"
    config = CONFIGS[name]
    gen, _, run = qemu_runs[name]
    stored = Configuration(config.task, config.model, config.cut, hidden=config.hidden, samples=config.samples,
                           epochs=2, batch=4, lr=config.lr, momentum=config.momentum)
    sgen = generate(stored, tmp_path / "gen", repeat=1, seed=SEED, test_limit=TEST_LIMIT)
    board = get_board("qemu-an386")
    srun = board.run(build(sgen, "cortex-m4", tmp_path / "m4", ["DSE_TRACE_WEIGHTS"], platform="qemu"),
                     board.timeout_for(5e8))
    assert weights_fnv(srun) == sgen.replayed_weights_fnv1a  # stored mode's replay too
    markers = 3 * config.samples + 6
    assert abs(run.instructions["collection"] - srun.instructions["collection"]) <= markers
    assert run.instructions["evaluation"] == srun.instructions["evaluation"]  # same test inputs, same head shape
    # the feature hash: the same FNV over the same features as stored mode's store, in collection order
    assert sorted(sgen.train_indices.tolist() + sgen.val_indices.tolist()) == gen.train_indices.tolist()
    row = {int(i): r for i, r in zip(np.concatenate([sgen.train_indices, sgen.val_indices]), sgen.expected_features)}
    assert fnv1a32(np.stack([row[int(i)] for i in gen.train_indices]).tobytes()) == run.report().features_fnv1a
    assert srun.report().features_fnv1a == sgen.expected_fnv1a


@pytest.mark.parametrize("name", ["fc1-h0-kN-m0", "motions-gru2-h8-k3-m.9"])
def test_host_board_equals_qemu_and_replay(qemu_runs, name, tmp_path):
    gen, _, qrun = qemu_runs[name]
    host = get_board("host").run(build(gen, "host", tmp_path / "host", ["DSE_TRACE_WEIGHTS"]), 60)
    rh, rq = host.report(), qrun.report()
    assert host.exit_code == 0
    assert (rh.features_fnv1a, rh.correct, rh.steps) == (rq.features_fnv1a, rq.correct, rq.steps)
    assert rh.correct == gen.replayed_correct and weights_fnv(host) == weights_fnv(qrun) == gen.replayed_weights_fnv1a
    assert set(rh.host_ns) == {"collection", "training", "evaluation"} and rh.host_ns["training"] > 0


def _symbols(path) -> dict[str, int]:
    with open(path, "rb") as fh:
        symtab = ELFFile(fh).get_section_by_name(".symtab")
        return {s.name: s["st_size"] for s in symtab.iter_symbols() if s.name}


@pytest.mark.parametrize("name", ["pool2-h8-k4-m0", "fc1-h0-k0-m.9"])
def test_deployed_image_has_no_store_and_a_ring(qemu_runs, name, tmp_path):
    """The deployed image: no sample store, no labels array of N; the ring holds K features and K labels; the work
    region follows the frozen arena (both live during the collection)."""
    config = CONFIGS[name]
    gen, _, _ = qemu_runs[name]
    deployed = build(gen, "cortex-m4", tmp_path / "dep", image="deployed", platform="qemu")
    sym = _symbols(deployed.path)
    assert "mt_store" not in sym and "labels" not in sym
    if config.replay:
        assert sym["mt_ring"] == config.replay * gen.feature_bytes and sym["mt_ring_labels"] == config.replay
    else:
        assert "mt_ring" not in sym
    text = (gen.out_dir / "dse_model.c").read_text()
    assert "DSE_REGION_BYTES (DSE_ARENA_ALIGNED + MT_TRAIN_WORK_BYTES)" in text


def test_marker_spans():
    assert marker_spans(6) == {"collection": [(0, 1, 1)], "training": [(2, 3, 1)], "evaluation": [(4, 5, 1)]}
    spans = marker_spans(3 * 2 + 6, streaming=True, samples=2)
    assert spans["training"] == [(0, 1, 1), (3, 4, 1), (6, 7, 1)]
    assert spans["collection"] == [(2, 9, 1), (3, 5, -1), (6, 8, -1)]
    assert spans["evaluation"] == [(10, 11, 1)]
    assert set(marker_spans(10, streaming=True, samples=2)) == {"collection", "training"}  # evaluation not reached
    # collection: (m9 - m2) minus the steps and the hash; training: the init and the steps
    m = [0, 10, 20, 25, 40, 41, 50, 70, 72, 80, 100, 130]
    got = {p: sum(s * (m[b] - m[a]) for a, b, s in sp) for p, sp in spans.items()}
    assert got == {"training": 10 + 15 + 20, "collection": 60 - 16 - 22, "evaluation": 30}


def _output(hello_extra: str, train: str) -> str:
    lines = ['{"event":"hello","firmware":"microtl-dse","protocol":1,"samples":3,"train":3,"val":0,"test":1,'
             f'"feature":4{hello_extra}}}']
    lines += [f'{{"event":"phase","phase":"{p}","edge":"{e}"}}' for p in ("collection", "training", "evaluation")
              for e in ("begin", "end")]
    lines += ['{"event":"features","fnv1a":"0x01020304","n":3,"bytes":4}', train,
              '{"event":"result","correct":1,"test":1}', '{"event":"memory","stack_bytes":8,"heap_bytes":0}',
              '{"event":"done","status":0}']
    return "\n".join(lines)


def test_protocol_streaming_train_event():
    report = parse(_output(',"mode":"streaming","replay":2',
                           '{"event":"train","epochs_run":1,"best_epoch":1,"improvements":0,"steps":6}'))
    assert (report.mode, report.replay, report.steps) == ("streaming", 2, 6)
    stored = parse(_output("", '{"event":"train","epochs_run":3,"best_epoch":2,"improvements":2}'))
    assert (stored.mode, stored.replay, stored.steps) == ("stored", 0, None)
    with pytest.raises(ProtocolError, match="'steps'"):
        parse(_output(',"mode":"streaming","replay":2', '{"event":"train","epochs_run":1,"best_epoch":1}'))
    with pytest.raises(ProtocolError, match="unknown mode"):
        parse(_output(',"mode":"online"', '{"event":"train","epochs_run":1,"best_epoch":1}'))


def test_stream_schedule_and_draw():
    assert stream_schedule(4, 2) == [0, 1, 0, 2, 0, 1, 3, 1, 2]
    assert len(stream_schedule(50, 8)) == steps_of(50, 8) and len(stream_schedule(9, 9)) == steps_of(9, 8)
    y = np.repeat(np.arange(3), 40)
    train, val = draw_samples(y, 30, 11)
    all_train, none = draw_samples(y, 30, 11, 0)
    assert len(none) == 0 and len(val) == 3
    assert all_train.tolist() == sorted(train.tolist() + val.tolist())  # the same samples, no validation split


def test_int16_features_har_rnn_gru1(tmp_path):
    """A cut whose layer outputs int16 (har_rnn gru1): the ring holds int16 features; qemu-an386 = replay."""
    from test_firmware_rnn_e2e import _har_dir

    require_tools()
    data_path, cache = _har_dir(tmp_path / "har"), tmp_path / "cache"
    config = streaming("har3b", "har_rnn", "gru1", hidden=4, samples=12, replay=3, momentum=0.9)
    gen = generate(config, tmp_path / "gen", repeat=0, seed=1, data_path=data_path, cache_dir=cache, test_limit=6)
    assert gen.feature_bits == 16
    board = get_board("qemu-an386")
    run = board.run(build(gen, "cortex-m4", tmp_path / "m4", ["DSE_TRACE_WEIGHTS"], platform="qemu"),
                    board.timeout_for(2e9))
    report = run.report()
    assert report.features_fnv1a == gen.expected_fnv1a and report.correct == gen.replayed_correct
    assert weights_fnv(run) == gen.replayed_weights_fnv1a and report.steps == steps_of(12, 3)
    deployed = build(gen, "cortex-m4", tmp_path / "dep", image="deployed", platform="qemu")
    assert _symbols(deployed.path)["mt_ring"] == 3 * gen.feature_bytes


STREAM_HEADER = """#include <stdint.h>
#define DSE_N_SAMPLES {n}u
#define DSE_N_TRAIN {n}u
#define DSE_N_VAL 0u
#define DSE_FEATURE {f}u
#define DSE_FEATURE_SCALE 0x1p-2f
#define DSE_HIDDEN {h}u
#define DSE_CLASSES 3u
#define DSE_BATCH 1u
#define DSE_EPOCHS 1u
#define DSE_PATIENCE 5u
#define DSE_LR 0x1.27b604p-6f
#define DSE_MOMENTUM 0x1.ccccccp-1f
#define DSE_DECAY 0x1.a36e2ep-14f
#define DSE_RESTORE_BEST 0
#define DSE_HEAD_SEED 0xdb2cd7e7u
#define DSE_STREAMING 1
#define DSE_REPLAY {k}u
"""


def _stream_code(tmp, n: int, k: int, h: int, f: int = 64) -> dict[str, list[str]]:
    """Instructions (mnemonic and operands) of mt_step and mt_stream_sample in microtl.c built as the firmware."""
    import subprocess

    from firmware.build import ARM_CC, C_DIR, COMMON_FLAGS, M4_FLAGS

    d = tmp / f"n{n}-k{k}-h{h}-f{f}"
    d.mkdir()
    (d / "dse_model.h").write_text(STREAM_HEADER.format(n=n, k=k, h=h, f=f))
    obj = d / "microtl.o"
    subprocess.run([ARM_CC, *M4_FLAGS, *COMMON_FLAGS, f"-I{d}", f"-I{C_DIR}", "-c", str(C_DIR / "microtl.c"), "-o",
                    str(obj)], check=True, capture_output=True)
    out = {}
    for name in ("mt_step", "mt_stream_sample"):
        text = subprocess.run(["arm-none-eabi-objdump", "-d", f"--section=.text.{name}", str(obj)], check=True,
                              capture_output=True, text=True).stdout
        out[name] = [line.split("\t", 2)[-1] for line in text.splitlines() if line[:1] == " " and "\t" in line]
    return out


@pytest.mark.parametrize("hidden", [0, 8])
def test_stream_code_is_the_same_for_every_sample_count_and_ring(tmp_path, hidden):
    """The cost model counts per step and per ring entry: mt_step is one code whatever N and K, and the ring's code
    one whatever K >= 1 and the feature size (only the ring size's immediate differs)."""
    require_tools()
    codes = {(n, k, f): _stream_code(tmp_path, n, k, hidden, f)
             for n, k, f in ((30, 1, 64), (30, 2, 64), (90, 8, 64), (200, 200, 64), (200, 32, 600))}
    steps = {key: c["mt_step"] for key, c in codes.items() if key[2] == 64}
    assert len(next(iter(steps.values()))) > 40 and len({tuple(s) for s in steps.values()}) == 1
    # the same instructions; only immediates and literal-pool offsets differ (K, the row size: movs or mov.w)
    rings = [[_mnemonic(ins) for ins in c["mt_stream_sample"] if not ins.startswith("nop")] for c in codes.values()]
    assert len(rings[0]) > 30 and all(r == rings[0] for r in rings)


def _mnemonic(ins: str) -> str:
    name = ins.split()[0]
    return "mov" if name in ("movs", "mov.w", "movw") else name


@pytest.mark.parametrize("repeats,features,hidden,classes,n,k,momentum,bits", [
    (1, 40, 1, 2, 12, 3, 0.9, 8),  # one head of one hidden unit: single-column sums (accumulated, not reduced)
    (1, 9, 0, 2, 6, 6, 0.0, 8),
    (3, 64, 0, 3, 20, 4, 0.9, 8),
    (4, 300, 8, 5, 15, 14, 0.0, 16),  # int16 features, K = N - 1
])
def test_stream_heads_equal_replay_head_bit_for_bit(repeats, features, hidden, classes, n, k, momentum, bits):
    """The study's streaming trainer (all repeats in lockstep, input-major weights, reduced sums) against the
    replay of one head at a time (np.add.accumulate, the firmware's operation order): the same bits."""
    from models.features import Features
    from models.head import SGDParams, train_heads
    from models.head_replay import replay_head

    rng = np.random.default_rng(features + n)
    dtype, top = (np.int8, 127) if bits == 8 else (np.int16, 4000)
    q = rng.integers(-top, top + 1, (repeats, n, features)).astype(dtype)
    y = rng.integers(0, classes, (repeats, n))
    params = SGDParams(lr=0.05, momentum=momentum, decay=1e-3, batch=1, epochs=1, restore_best=False,
                       mode="streaming", replay=k)
    seeds = [int(s) for s in rng.integers(0, 2**32, repeats)]
    empty = Features(np.zeros((0, features), dtype), 5)
    heads = train_heads([Features(q[r], 5) for r in range(repeats)], list(y), [empty] * repeats,
                        [np.zeros(0, int)] * repeats, hidden, classes, params, seeds)
    for r in range(repeats):
        one = replay_head(Features(q[r], 5), y[r], empty, np.zeros(0, int), hidden, classes, params, seeds[r])
        assert heads[r].steps == one.steps == steps_of(n, k)
        for (wa, ba), (wb, bb) in zip(heads[r].weights, one.weights):
            assert wa.shape == wb.shape and np.array_equal(wa.view(np.uint32), wb.view(np.uint32))
            assert np.array_equal(ba.view(np.uint32), bb.view(np.uint32))
