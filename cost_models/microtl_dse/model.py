"""What OUR firmware (firmware/c) executes and allocates for one workload, as named counts: the design of the
instruction and memory models of boards that run it (qemu-an386; the same ELF layout as the nRF52840 build).

Pure functions of a `Workload` plus the evaluation's test inputs. Each count follows a loop of the C code, so a
linear model in them (coefficients from calibration only) can be exact up to data-dependent branches:
- instructions per phase: collection (N frozen forward passes: per-kind MACs, the unrolled dot product's tail,
  outputs, kernel rows, pooling compares, ReLU elements, layer calls; the valid taps of padded convolutions and the
  LSTM/GRU loops of cost_models/microtl_dse/rnn_counts.py), training (per epoch run: head forward MACs, first-layer
  elements dequantized on the fly (one per first-layer MAC), dense outputs and exponentials of every stored sample;
  first-layer and hidden-layer gradient MACs, hidden units and gradient rows of each training sample (one sample at
  a time into the update buffer); per mini-batch (the last one partial) the update buffer's two passes over every
  parameter (u = momentum u + decay w before, w -= lr u after; at momentum 0 and batch 1 instead the direct
  per-sample update of every parameter, a count of its own: unobserved, so unpriced, until the campaign has such
  runs); the heap-sort shuffle's comparisons and sift steps; per training / validation sample and per batch and epoch overheads; weight copies of early stopping when
  restore_best), evaluation (T frozen forward passes plus the head);
- RAM terms of the *deployed image* (deployed.c: what a product ships and studies price): the arrays of microtl.c /
  deployed.c / codegen (sample store, head weights, the trainer's work region in its parts: update buffer (none at
  momentum 0 and batch 1), best-weights copy (restore_best only), float32 activations, uint16 shuffle index;
  mt_predict's activations; the frozen arena of the liveness plan (models/arena.py: layer outputs, fused
  conv -> pool bands, kernel scratch; int16 sequences 2 B per element), which shares one region with the work
  region (collection and training are never live together: max(arena, work) bytes); the inference feature, the
  LSTM cell, the sensor's one input buffer and the collected labels) and a runtime constant (libc, stack
  high-water);
- flash terms of the deployed image: frozen weights (LSTM/GRU biases int16), the code of each kernel kind linked,
  the q15 sigmoid/tanh tables, the trainer's hidden-layer code, calls (recurrent calls apart), and a code constant.
  No inputs are stored: the sensor fills the input buffer. Not followed (GCC's peeling and inlining on compile-time
  constants, measured in docs/calibration.md): the trainer's code varies up to 120 B with N, batch, validation
  count and epoch budget, the head's with the class count;
- the validation harness's own share (harness.c, the platforms' input stream: validation ELF - deployed ELF) is a
  separate constant per metric (HARNESS), fitted from the records' harness_ram / harness_flash, never priced into a
  study's figures.
Streaming (TinyOL, `Workload.mode`): collection counts the same frozen forwards, bracketed one by one (per-sample
and per-run overheads of their own: stream_samples, stream_constant); training is the sum of the mt_stream_sample
calls: the step's loops as above with one sample per step and sum_i (1 + min(i, K)) steps (coefficients of their
own: the step is compiled for batch 1), plus per collected sample, per ring entry trained, per push and pushed
feature byte, and mt_stream_begin's init - see `stream_training_counts`; RAM without the sample store, labels, shuffle index or best copy, a ring of K features and
labels, and the work region beside the frozen arena (arena + work, both live through the collection); flash with
the streaming trainer's code in place of the epoch loop's.
Counts the data cannot separate are split by NNLS; only their sum is tested by the records.
"""
from __future__ import annotations

from functools import lru_cache
from math import ceil

import numpy as np

from cost_models.microtl_dse import dsp_counts as ff
from cost_models.microtl_dse import rnn_counts as rnn
from cost_models.workload import Workload
from models.arena import arena_bytes, band_rows, steps_of
from models.kernels import fast_path
from models.prng import rand_u32
from vocabulary.phases import PHASES

FLOAT32, INT8, UINT16 = 4, 1, 2

_FROZEN = ("macs_conv2d", "macs_conv1d", "macs_fc", "dot_tail_macs", "dot_calls", "long_dot_calls",
           "tail_dot_calls", "output_elements", "pixels", "rows", "compares", "relu_elements", "layer_calls",
           *rnn.COUNTS, *ff.COUNTS)
_HEAD = ("forward_macs", "dequantized_elements", "dense_outputs", "softmax_terms")
# streaming's own counts (zero in stored mode, and stored mode's zero in streaming): its step's loops (the stored
# step's, compiled apart: STREAM_STEP), what its code runs besides the step (mt_stream_sample's loop over the ring,
# the push, mt_stream_begin) and the collection's per-sample bracketing; their coefficients come from streaming runs
STREAM_COLLECTION = ("stream_samples", "stream_constant")
STREAM_STEP = ("stream_gradient_macs", "stream_hidden_macs", "stream_forward_macs", "stream_dequantized_elements",
               "stream_dense_outputs", "stream_softmax_terms", "stream_parameter_updates", "stream_direct_updates",
               "stream_gradient_rows", "stream_hidden_gradients", "stream_train_samples")
STREAM_TRAINING = ("stream_samples", "ring_steps", "ring_pushes", "ring_push_bytes", "stream_parameters",
                   "stream_constant", *STREAM_STEP)
COUNTS = {
    "collection": (*_FROZEN, "samples", "constant", *STREAM_COLLECTION),
    "training": ("gradient_macs", "hidden_macs", *_HEAD, "parameter_updates", "direct_updates", "gradient_rows",
                 "hidden_gradients",
                 "shuffle_compares", "shuffle_sifts", "train_samples", "val_samples", "batches", "epochs",
                 "parameter_copies", "parameters", "constant", *STREAM_TRAINING),
    "evaluation": (*_FROZEN, *_HEAD, "samples", "constant"),
}
SHUFFLE_KEY_WORK = 2048  # heap_sort_work averages over about this many keys in all (8 draws at most, 1 at least)

# RAM terms, and the groups whose members are proportional by construction and so share one fitted scale
RAM_TERMS = ("sample_store", "head_weights", "update_buffer", "best_weights", "train_activations", "shuffle_index",
             "predict_activations", "frozen_arena", "feature_buffer", "recurrent_state", "runtime",
             "sensor_input", "labels", "ring", "stored_runtime", "stream_runtime")
# the parts of mt_train's work region (MT_TRAIN_WORK_BYTES): they sum to train_work_bytes()
WORK_TERMS = ("update_buffer", "best_weights", "train_activations", "shuffle_index")
FLASH_TERMS = ("frozen_weights", "kernel_conv2d", "kernel_conv1d",
               "kernel_maxpool2d", "kernel_fc", "kernel_relu", "kernel_lstm", "kernel_gru", "rnn_tables",
               "hidden_layer_code", "update_buffer_code", "best_copy_code", "layer_calls", "recurrent_calls",
               "epoch_loop_code", "stream_code", "ring_code", "code")
HARNESS = "harness"  # the harness's constant in a calibration's ram / flash scales (bytes)
GROUPS = {
    "ram": {"sample_store": ("sample_store",), "parameter_arrays": ("head_weights", "update_buffer", "best_weights"),
            "float_buffers": ("train_activations", "predict_activations"), "shuffle_index": ("shuffle_index",),
            "frozen_arena": ("frozen_arena",), "feature_buffer": ("feature_buffer",),
            "recurrent_state": ("recurrent_state",),
            "runtime": ("runtime",), "stored_runtime": ("stored_runtime",), "stream_runtime": ("stream_runtime",),
            "sensor_input": ("sensor_input",), "labels": ("labels",), "ring": ("ring",)},
    "flash": {t: (t,) for t in FLASH_TERMS},
}
# exactly the bytes the C declares: scale 1, never fitted (sample store: N x feature bytes; shuffle index: uint16
# per training sample; the frozen arena: the bytes of the shared region beyond the training work, codegen's
# liveness plan (models/arena.py); the LSTM cell: the campaign has one LSTM, so its 64 B could not be told from
# the runtime constant by any fit; the trainer's and mt_predict's few float activations). Fitted, the shuffle index
# took 1.13 B per byte, most likely standing in for the stack high-water (it differs by model and cut: 272-376 B
# measured), not for its own bytes.
FIXED_GROUPS = {"sample_store", "shuffle_index", "frozen_arena", "recurrent_state", "float_buffers", "sensor_input",
                "labels", "ring"}
# runtime: what both modes have; stored_runtime / stream_runtime: each mode's own constant on top (its statics, its
# main's stack), so that either mode may need more (NNLS keeps every part >= 0)
CONSTANT_GROUPS = {"runtime", "stored_runtime", "stream_runtime", "code"}


def _frozen_counts(w: Workload, kind: str = "portable") -> dict[str, float]:
    """One forward pass of the frozen layers up to the cut, as codegen calls them: the steps of the arena plan
    (models/arena.py), each layer counted by the loops of the kernel that runs it on a board of `kind`
    (models.kernels.fast_path: the DSP kernels of firmware/c/nn_q7_m4.c, counted by cost_models/microtl_dse/dsp_counts.py;
    else the portable nn_q7.c). A fused conv -> max pool makes one nn_conv2d_rows_q7 call (its band's rows) and one
    single-row nn_maxpool2d_q7 call per pool row, and computes only the conv rows the pool reads (overlapping pools:
    again per pool row); a max pool's input ReLU runs on its output (max and ReLU commute)."""
    c = dict.fromkeys(_FROZEN, 0.0)
    fast = kind != "portable"
    prev = w.layers[0]
    for group in steps_of(w.layers[1:]):
        layer, pool = group if len(group) == 2 else (group[0], None)
        if layer.kind == "maxpool2d":
            layer, pool = None, layer  # a pool step of its own
        if prev.relu:  # codegen applies the previous layer's ReLU in place before this layer (a pool: after it)
            _count_relu(c, pool.elements if layer is None else prev.elements, fast)
        if layer is not None:
            rows = band_rows(layer, pool) if pool is not None else None
            if fast_path(layer, kind):
                _add(c, ff.conv_counts(layer, rows, pool.kernel if pool is not None else None)
                     if layer.kind in ("conv2d", "conv1d") else
                     ff.fc_counts(layer) if layer.kind == "fc" else {"output_elements": layer.elements})
            else:
                _count_layer(c, layer, rows)
        if pool is not None:
            if fast_path(pool, kind):  # fused: one single-row call per pool row
                _add(c, ff.pool_counts(pool) if layer is None else ff.pool_counts(pool, 1, pool.out_shape[0]))
            else:
                c["compares"] += pool.compares
                c["pixels"] += pool.elements // pool.out_shape[-1]
                c["rows"] += pool.out_shape[0]
                c["output_elements"] += pool.elements
            if layer is not None and layer.relu:  # the fused conv's ReLU, after the pool
                _count_relu(c, pool.elements, fast)
        # kernel calls: one per step, a fused pair one conv-rows and one single-row pool call per pool row
        c["layer_calls"] += 2 * pool.out_shape[0] if pool is not None and layer is not None else 1
        prev = group[-1]
    for k, v in rnn.frozen_recurrent_counts(w.layers).items():
        if not (fast and k in ("rnn_macs_8", "rnn_macs_16", "rnn_dot_calls")):  # the DSP gate rows: ff's counts
            c[k] += v
    if fast:
        for p, layer in zip(w.layers, w.layers[1:]):
            if layer.kind in rnn.RECURRENT and fast_path(layer, kind):
                _add(c, ff.recurrent_counts(layer, p.out_bits))
    return c


def _add(c: dict[str, float], counts: dict[str, float]) -> None:
    for k, v in counts.items():
        c[k] += v


def _count_relu(c: dict[str, float], size: int, fast: bool) -> None:
    """One nn_relu_q7 call of `size` bytes: the portable loop per element, the DSP one per word and tail byte."""
    if fast:
        _add(c, ff.relu_counts(size))
    else:
        c["relu_elements"] += size


def _count_layer(c: dict[str, float], layer, out_rows: list[int] | None) -> None:
    """Add one conv / fc / recurrent layer's kernel counts to `c` (conv2d: over `out_rows` only, when given)."""
    if layer.kind in ("conv2d", "conv1d"):
        # only the taps inside the input are multiplied (zero padding): conv1d one run of valid taps x in_ch
        # per output, conv2d one per valid kernel row
        conv = rnn.conv_counts(layer, out_rows)
        c[f"macs_{layer.kind}"] += conv["macs"]
        for k in ("dot_calls", "dot_tail_macs", "long_dot_calls", "tail_dot_calls"):
            c[k] += conv[k]
        pixels = layer.elements // layer.out_shape[-1]
        if layer.kind == "conv2d":
            computed = layer.out_shape[0] if out_rows is None else len(out_rows)
            pixels = computed * layer.out_shape[1]
            c["rows"] += computed  # per output row computed: its valid kernel rows, loop set-up
        c["pixels"] += pixels
        c["output_elements"] += pixels * layer.out_shape[-1]
    elif layer.kind == "fc":
        c["output_elements"] += layer.elements
        fc = rnn.fc_counts(layer)
        c["macs_fc"] += fc.pop("macs")
        for k, v in fc.items():
            c[k] += v
    else:  # lstm / gru: their loops are counted by rnn.frozen_recurrent_counts
        c["output_elements"] += layer.elements


def _head_forward(w: Workload) -> dict[str, float]:
    """One stored sample through the head (mt_forward): dense layers, the first over the stored integers converted
    on the fly (one conversion per first-layer MAC), one exponential per class."""
    first_in, first_out = w.head[0]
    return {"forward_macs": float(w.head_macs), "dequantized_elements": float(first_in * first_out),
            "dense_outputs": float(sum(o for _, o in w.head)), "softmax_terms": float(w.head[-1][1])}


def _heap_sort(key: list[int]) -> tuple[list[int], int, int]:
    """mt_shuffle's heap sort of the indices 0..n-1 by (key, index): (order, comparisons, sift steps), where a
    comparison is a call of mt_after and a sift step a swap in mt_sift_down."""
    n = len(key)
    order = list(range(n))
    compares = sifts = 0

    def after(a: int, b: int) -> bool:
        nonlocal compares
        compares += 1
        return key[a] > key[b] or (key[a] == key[b] and a > b)

    def sift_down(root: int, m: int) -> None:
        nonlocal sifts
        while (child := 2 * root + 1) < m:
            if child + 1 < m and after(order[child + 1], order[child]):
                child += 1
            if not after(order[child], order[root]):
                return
            order[root], order[child] = order[child], order[root]
            sifts += 1
            root = child

    for i in range(n // 2 - 1, -1, -1):
        sift_down(i, n)
    for i in range(n - 1, 0, -1):
        order[0], order[i] = order[i], order[0]
        sift_down(0, i)
    return order, compares, sifts


@lru_cache(maxsize=256)
def heap_sort_work(n: int) -> tuple[float, float]:
    """Expected (comparisons, sift steps) of one mt_shuffle of n indices: the firmware's heap sort replayed on
    pseudo-random keys (the firmware's keys are mix32 hashes of seed, epoch and index), averaged over a few key
    draws (fewer for large n, whose relative spread is smaller). One epoch's count depends on its keys: 1 sd =
    0.4-3% of the shuffle's work (200 draws, n = 270..18), and the shuffle is a few percent of training at most."""
    if n < 2:
        return 0.0, 0.0

    draws = min(8, max(1, ceil(SHUFFLE_KEY_WORK / n)))
    work = [_heap_sort([int(k) for k in rand_u32(draw, 0x2001, np.arange(n))])[1:] for draw in range(draws)]
    return sum(c for c, _ in work) / draws, sum(s for _, s in work) / draws


def estimated_best_epoch(epochs_run: float, budget: int, patience: int) -> float:
    """The best epoch when only the epochs run are known: early stopping ended `patience` epochs after it; a run
    to the budget is taken as still improving. (Each improvement copies the weights: the parameter_copies count.)"""
    return max(1.0, epochs_run - patience) if epochs_run < budget else float(epochs_run)


def instruction_counts(phase: str, w: Workload, epochs: float, test: int,
                       best_epoch: float | None = None, kind: str = "portable") -> dict[str, float]:
    """Counts of `phase` for `epochs` epochs run, `test` evaluation inputs and the epoch of the best weights
    (bounds the weight copies of early stopping; default: every epoch improved), on a board of `kind`
    (models.kernels.board_kind: which frozen-layer kernels run). Where the improvements themselves are known
    (the firmware reports them: run records' `copies`), pass them as `best_epoch`: the copies are exact."""
    if phase == "collection":
        c = {k: v * w.samples for k, v in _frozen_counts(w, kind).items()}
        # streaming brackets each forward on its own (the phase is the sum of N intervals): per-sample and per-run
        # overheads of their own
        own = ("stream_samples", "stream_constant") if w.streaming else ("samples", "constant")
        c.update(dict.fromkeys(("samples", "constant", *STREAM_COLLECTION), 0.0))
        return {**c, own[0]: float(w.samples), own[1]: 1.0}
    if phase == "evaluation":
        c = {k: v * test for k, v in _frozen_counts(w, kind).items()}
        c.update({k: v * test for k, v in _head_forward(w).items()})
        return {**c, "samples": float(test), "constant": 1.0}
    if phase == "training" and w.streaming:
        return stream_training_counts(w)
    if phase == "training":
        # mt_train: per epoch a shuffle, ceil(Nt / B) calls of mt_step (the last batch partial), each running its
        # samples forward and backward one at a time, and a validation pass
        n, ntr, nval = w.samples, w.train_samples, w.val_samples
        batches = ceil(ntr / w.batch) if ntr else 0
        first_in, first_out = w.head[0]
        hidden = sum(o for _, o in w.head[:-1])
        rows = sum(o for _, o in w.head)  # gradient rows: one per output of every layer (bias gradient + loop set-up)
        compares, sifts = heap_sort_work(ntr)
        # with restore_best, early stopping copies the weights at start, at every improvement (at most the best
        # epoch's number: an upper bound when the improvements are not known) and back at the end; else never
        improvements = epochs if best_epoch is None else best_epoch
        copies = improvements + 2 if nval and w.restore_best else 0
        out = {k: epochs * n * v for k, v in _head_forward(w).items()}  # mt_forward: training and validation
        out.update({
            "gradient_macs": epochs * ntr * first_in * first_out,  # first layer weight gradients (b innermost)
            "hidden_macs": epochs * ntr * sum(i * o for i, o in w.head[1:]),  # output layer grads + back-prop
            # per step the update buffer's two passes over every parameter; without a buffer (momentum 0, batch 1)
            # each sample's gradient updates every parameter directly instead (w -= lr (g + decay w))
            "parameter_updates": epochs * batches * w.head_params if update_buffer(w) else 0,
            "direct_updates": 0 if update_buffer(w) else epochs * ntr * w.head_params,
            "gradient_rows": epochs * ntr * rows,  # per sample: each output's bias term and loop set-up
            "hidden_gradients": epochs * ntr * hidden,
            "shuffle_compares": epochs * compares, "shuffle_sifts": epochs * sifts,
            "train_samples": epochs * ntr, "val_samples": epochs * nval,
            "batches": epochs * batches, "epochs": float(epochs),
            "parameter_copies": copies * w.head_params,
            "parameters": float(w.head_params), "constant": 1.0,
        })
        return {k: float(out.get(k, 0.0)) for k in COUNTS["training"]}
    raise ValueError(f"unknown phase {phase!r}; phases: {', '.join(PHASES)}")


def stream_training_counts(w: Workload) -> dict[str, float]:
    """The training phase of streaming (mt_stream_begin and the N mt_stream_sample calls: the harness counts them
    as training, firmware/protocol.py marker_spans): per collected sample one step of batch 1 on it, one on each of
    the min(i, K) ring entries (oldest to newest), then its push into the ring (K > 0).
    A step runs the loops of the stored trainer's step on one sample - head forward and backward, gradient rows,
    the update (the buffer's two passes over every parameter; at momentum 0 the direct per-sample update) - but is
    other machine code: streaming's mt_step is compiled for nb = 1 (no batch loop, no division by the batch size,
    the feature passed in), so its counts have coefficients of their own (prefix stream_): fitted on streaming runs
    only, they leave the stored fit as it was (measured: sharing them moved stored mode's worst in-sample training
    error from 0.06% to 0.11% and was worse on held-out streaming runs). No shuffle, validation, early stopping or
    weight copies. Besides the steps: per collected sample (the call, the loop's set-up), per ring entry trained
    (its index and pointers), per push (the label, the ring index) and per pushed feature byte (the copy into the
    ring), and mt_stream_begin's weight init per parameter and constant."""
    steps = float(w.steps)
    first_in, first_out = w.head[0]
    pushes = float(w.samples if w.replay else 0)
    step = {f"stream_{k}": steps * v for k, v in _head_forward(w).items()}
    step.update({
        "stream_gradient_macs": steps * first_in * first_out,
        "stream_hidden_macs": steps * sum(i * o for i, o in w.head[1:]),
        "stream_parameter_updates": steps * w.head_params if update_buffer(w) else 0.0,
        "stream_direct_updates": 0.0 if update_buffer(w) else steps * w.head_params,
        "stream_gradient_rows": steps * sum(o for _, o in w.head),
        "stream_hidden_gradients": steps * sum(o for _, o in w.head[:-1]),
        "stream_train_samples": steps,
    })
    out = dict.fromkeys(COUNTS["training"], 0.0)
    out.update(step)
    out.update({"stream_samples": float(w.samples), "ring_steps": float(w.ring_steps), "ring_pushes": pushes,
                "ring_push_bytes": pushes * w.feature_bytes, "stream_parameters": float(w.head_params),
                "stream_constant": 1.0})
    return {k: float(v) for k, v in out.items()}


def update_buffer(w: Workload) -> bool:
    """Whether the trainer keeps an update buffer (MT_UPDATE_BUFFER): not at momentum 0 and batch 1."""
    return w.momentum or w.batch > 1


def best_copy(w: Workload) -> bool:
    """Whether the trainer keeps the best epoch's weights (MT_BEST_COPY): restore_best with a validation set."""
    return w.restore_best and w.val_samples > 0


def ram_terms(w: Workload) -> dict[str, int]:
    """Bytes per RAM term as allocated by the C code (runtime: 1, the unit its fitted size multiplies). Streaming
    has no sample store, collected labels or shuffle index, and no best copy (the last weights are kept); it keeps
    a ring of K features and K uint8 labels (none at K = 0), and its work region lives beside the frozen arena."""
    params = w.head_params
    classes = w.head[-1][1]
    hidden = sum(o for _, o in w.head[:-1])
    stored = not w.streaming
    terms = {
        "sample_store": w.samples * w.feature_bytes if stored else 0,
        "head_weights": params * FLOAT32,
        # mt_train's work region (MT_TRAIN_WORK_BYTES), part by part
        "update_buffer": params * FLOAT32 if update_buffer(w) else 0,
        "best_weights": params * FLOAT32 if best_copy(w) else 0,
        "train_activations": (2 * hidden + classes) * FLOAT32,  # hidden activations and deltas, logits
        # uint16 each; the region ends 4-aligned
        "shuffle_index": ceil(max(w.train_samples, 1) * UINT16 / 4) * 4 if stored else 0,
        "predict_activations": (hidden + classes) * FLOAT32,  # mt_predict's statics (evaluation)
        # the frozen arena shares one region with the work region (never live together): the region is
        # max(arena, work), priced as the work's parts plus what the arena needs beyond them
        "frozen_arena": 0,
        "feature_buffer": w.feature_bytes,
        "recurrent_state": rnn.state_bytes(w.layers),
        "runtime": 1,
        "sensor_input": w.input_elements * INT8,  # deployed.c's one input buffer, filled by the sensor
        "labels": max(w.samples, 1) * INT8 if stored else 0,  # the collected samples' labels (uint8)
        # K features, their uint8 labels, the ring's count and next slot (uint32 each)
        "ring": w.replay * (w.feature_bytes + INT8) + 2 * 4 if w.streaming and w.replay else 0,
        "stored_runtime": int(stored),
        "stream_runtime": int(w.streaming),
    }
    terms["frozen_arena"] = region_bytes(w) - sum(terms[t] for t in WORK_TERMS)
    return terms


def region_bytes(w: Workload) -> int:
    """The one region of the frozen arena (collection, evaluation) and the trainer's work region: `dse_arena` of
    the generated source, 4-byte aligned. Stored mode: shared, max of the two (collection and training never live
    together); streaming: side by side, arena + work (the update buffer persists across the collection)."""
    arena = ceil(arena_bytes(w.layers) / 4) * 4
    return arena + train_work_bytes(w) if w.streaming else max(arena, train_work_bytes(w))


def train_work_bytes(w: Workload) -> int:
    """MT_TRAIN_WORK_BYTES of microtl.h: the region the trainer needs besides the weights and the sample store
    (streaming: no shuffle order)."""
    params = w.head_params
    hidden = sum(o for _, o in w.head[:-1])
    floats = (params if update_buffer(w) else 0) + (params if best_copy(w) else 0) + 2 * hidden + w.head[-1][1]
    order = 0 if w.streaming else max(w.train_samples, 1) * UINT16
    return ceil((floats * FLOAT32 + order) / 4) * 4


def flash_terms(w: Workload, test: int = 0) -> dict[str, int]:
    """Bytes per flash term of the deployed image (indicator/constant terms: 1 or 0, the unit their fitted size
    multiplies). `test` is unused: no test set is stored (the validation harness streams it from the host)."""
    kinds = {layer.kind for layer in w.layers[1:]}
    return {
        "frozen_weights": sum(rnn.weight_bytes(layer, w.bias_bytes) for layer in w.layers[1:]),
        **{f"kernel_{k}": int(k in kinds) for k in ("conv2d", "conv1d", "maxpool2d", "fc", "lstm", "gru")},
        "rnn_tables": int(bool(kinds & set(rnn.RECURRENT))),  # the q15 sigmoid/tanh tables and their lookup
        "kernel_relu": int(any(getattr(layer, "relu", False) for layer in w.layers[1:-1])),
        "hidden_layer_code": int(len(w.head) > 1),
        # the trainer's compile-time variants (microtl.h MT_UPDATE_BUFFER, MT_BEST_COPY): the buffered update or the
        # direct per-sample one; the best-weights copy and restore
        "update_buffer_code": int(update_buffer(w)),
        "best_copy_code": int(best_copy(w)),
        "layer_calls": len(w.layers) - 1,
        "recurrent_calls": sum(layer.kind in rnn.RECURRENT for layer in w.layers[1:]),  # 13-14 arguments each
        # the mode's trainer: stored mode's epoch loop (mt_train: shuffle, validation loss, early stopping) or
        # streaming's per-sample steps (mt_stream_begin, mt_stream_sample), with the ring's code when K > 0
        "epoch_loop_code": int(not w.streaming),
        "stream_code": int(w.streaming),
        "ring_code": int(w.streaming and w.replay > 0),
        "code": 1,
    }


def stored_inputs_bytes(w: Workload, test: int) -> int:
    """Flash the validation build used to spend on inputs in place of a sensor (collection and test inputs with
    their labels): what records measured before the harness streamed them must drop to price the deployed image."""
    return (w.samples + test) * (w.input_elements * INT8 + 1)


TERMS = {"ram": RAM_TERMS, "flash": FLASH_TERMS}


def terms(metric: str, w: Workload, test: int) -> dict[str, int]:
    return ram_terms(w) if metric == "ram" else flash_terms(w, test)
