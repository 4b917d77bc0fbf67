"""Trial -> generated C sources (dse_model.h, dse_model.c) for the firmware, plus what Python expects of a run.

The sources hold the frozen int8 layers up to the cut only (weights, biases, shifts and a straight-line
`dse_frozen_forward` whose activations live in one static arena planned by liveness, models/arena.py: a conv
followed by a max pool computed fused, one pool row at a time; the caller's input pointer in, the caller's feature
row out), the head shape and hyper-parameters (floats as exact hex literals of their float32 value),
the head seed, the feature element type (int8, or int16 at a cut whose layer outputs int16: har_rnn's gru1 /
gru2) and scale. No inputs are compiled in: the inputs go to `dse_inputs.bin`, the input stream the validation
harness reads from the host while the firmware runs (docs/firmware.md): the N collection inputs (int8, quantized
with the model's input frac bits) with their labels - training samples first, then validation samples, each in the
order of the Python draw (streaming: all N, no validation split, in that order: the collection order the head
trains in) - then the T target test inputs with labels. The draw (`models.draw.draw`: samples, features, test
inputs, the simulated and the replayed head) is repeat `repeat` of `models.simulate.simulate(config, repeats,
seed)`, so a firmware run is one of the simulated repeats done for real; this module only writes C from it.

Same configuration, repeat and seed: byte-identical sources and input stream (no time stamps, no paths, no
dict-order surprises).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.arena import ArenaPlan, plan_arena
from models.draw import Draw, draw
from models.head_params import SGDParams
from models.quantize import QLayer, QuantizedModel
from models.zoo import get_model
from vocabulary.configuration import Configuration

PROTOCOL = 1
HEADER, SOURCE, MANIFEST = "dse_model.h", "dse_model.c", "dse_manifest.json"
INPUTS = "dse_inputs.bin"  # the harness's input stream (the name the qemu and host platforms open)
INPUT_MAGIC, INPUT_VERSION = b"DSEI", 1
SUPPORTED_KINDS = ("conv2d", "conv1d", "maxpool2d", "fc", "lstm", "gru")
_U16 = 0xFFFF
_FEATURE_DTYPES = {8: np.dtype(np.int8), 16: np.dtype("<i2")}  # store element width -> numpy dtype
_C_TYPES = {8: "int8_t", 16: "int16_t"}


@dataclass(eq=False)
class GeneratedSources:
    """Generated sources and the Python side's expectations of the firmware run built from them (the draw's)."""

    out_dir: Path
    files: list[Path]  # dse_model.h, dse_model.c
    sha256: str  # over the generated sources (header then source)
    inputs: Path  # dse_inputs.bin: the input stream the validation harness feeds (docs/firmware.md)
    inputs_sha256: str
    draw: Draw  # the configuration, sample draw, features and heads the sources were written for
    input_frac_bits: int
    feature_frac_bits: int
    feature_bytes: int  # bytes of one stored feature (elements x feature_bits / 8)
    feature_bits: int  # 8 or 16: the store's element width, the cut layer's out_bits
    expected_fnv1a: int  # FNV-1a of the draw's features: what the firmware's features event must print
    # the replay's validation losses as float32 bit patterns and its kept weights' FNV-1a in the firmware's layout
    # (the "weights" event of a build with DSE_TRACE_WEIGHTS)
    replayed_val_loss_bits: list[str] = field(default_factory=list)
    replayed_weights_fnv1a: int = 0
    dump_features: bool = False
    notes: list[str] = field(default_factory=list)

    config = property(lambda self: self.draw.configuration)
    repeat = property(lambda self: self.draw.repeat)
    seed = property(lambda self: self.draw.seed)
    draw_seed = property(lambda self: self.draw.draw_seed)
    head_seed = property(lambda self: self.draw.head_seed)
    classes = property(lambda self: self.draw.classes)
    train_indices = property(lambda self: self.draw.train_indices)
    val_indices = property(lambda self: self.draw.val_indices)
    test_indices = property(lambda self: self.draw.test_indices)
    expected_features = property(lambda self: self.draw.features)
    simulated_accuracy = property(lambda self: self.draw.simulated_accuracy)
    simulated_correct = property(lambda self: self.draw.simulated_correct)
    simulated_epochs_run = property(lambda self: self.draw.simulated.epochs_run)
    simulated_best_epoch = property(lambda self: self.draw.simulated.best_epoch)
    simulated_steps = property(lambda self: self.draw.simulated.steps)
    replayed_accuracy = property(lambda self: self.draw.replayed_accuracy)
    replayed_correct = property(lambda self: self.draw.replayed_correct)
    replayed_epochs_run = property(lambda self: self.draw.replayed.epochs_run)
    replayed_best_epoch = property(lambda self: self.draw.replayed.best_epoch)
    replayed_steps = property(lambda self: self.draw.replayed.steps)

    @property
    def n_train(self) -> int:
        return len(self.train_indices)

    @property
    def n_val(self) -> int:
        return len(self.val_indices)

    @property
    def n_samples(self) -> int:
        return self.n_train + self.n_val

    @property
    def n_test(self) -> int:
        return len(self.test_indices)

    def manifest(self) -> dict:
        """JSON-able summary (written as dse_manifest.json next to the sources)."""
        return {
            "protocol": PROTOCOL, "sha256": self.sha256, "inputs_sha256": self.inputs_sha256, "config": self.config.to_dict(), "repeat": self.repeat,
            "seed": self.seed, "draw_seed": self.draw_seed, "head_seed": self.head_seed,
            "input_frac_bits": self.input_frac_bits, "feature_frac_bits": self.feature_frac_bits,
            "feature_bytes": self.feature_bytes, "feature_bits": self.feature_bits, "classes": self.classes,
            "samples": self.n_samples, "train": self.n_train, "val": self.n_val, "test": self.n_test,
            "expected_fnv1a": f"0x{self.expected_fnv1a:08x}", "simulated_accuracy": self.simulated_accuracy,
            "simulated_correct": self.simulated_correct, "simulated_epochs_run": self.simulated_epochs_run,
            "simulated_best_epoch": self.simulated_best_epoch, "replayed_accuracy": self.replayed_accuracy,
            "replayed_correct": self.replayed_correct, "replayed_epochs_run": self.replayed_epochs_run,
            "replayed_best_epoch": self.replayed_best_epoch, "replayed_val_loss_bits": self.replayed_val_loss_bits,
            "replayed_steps": self.replayed_steps, "simulated_steps": self.simulated_steps,
            "replayed_weights_fnv1a": f"0x{self.replayed_weights_fnv1a:08x}",
            "dump_features": self.dump_features,
            "notes": self.notes,
        }


def fnv1a32(data: bytes) -> int:
    """FNV-1a 32 (the firmware's features hash)."""
    h = 2166136261
    for byte in data:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def weights_fnv1a(layers) -> int:
    """FNV-1a 32 of a head's float32 parameters in the firmware's flat layout [W1 | b1 | W2 | b2], little-endian."""
    return fnv1a32(np.concatenate([np.asarray(a, "<f4").ravel() for pair in layers for a in pair]).tobytes())


def c_float(value: float) -> str:
    """Exact C literal of the float32 nearest to value: hex float with an f suffix (e.g. 0x1.47ae14p-7f)."""
    v = float(np.float32(value))
    if not np.isfinite(v):
        raise ValueError(f"codegen: {value!r} is not a finite float32")
    text = v.hex()  # e.g. '0x1.47ae140000000p-7'
    mantissa, exponent = text.split("p")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}p{exponent}f"


def _c_array(values: np.ndarray, per_line: int = 24, indent: str = "    ") -> str:
    flat = [str(int(v)) for v in np.asarray(values).ravel()]
    lines = [indent + ", ".join(flat[i:i + per_line]) + "," for i in range(0, len(flat), per_line)]
    return "\n".join(lines) if lines else indent + "0,"


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def generate(config: Configuration, out_dir: str | Path, *, repeat: int = 0, seed: int = 0,
             data_path: str | Path | None = None, source_labels=None, target_labels=None,
             test_limit: int | None = None, dump_features: bool = False,
             cache_dir: str | Path | None = None) -> GeneratedSources:
    """Write dse_model.h / dse_model.c (and dse_manifest.json) for repeat `repeat` of study seed `seed`."""
    if repeat < 0:
        raise ValueError(f"codegen: repeat must be >= 0, got {repeat}")
    get_model(config.model).check_cut(config.cut)
    if config.scheme != "q7":
        raise ValueError(f"codegen: the firmware implements scheme 'q7' only, not {config.scheme!r}")
    drawn = draw(config, repeat, seed, data_path=data_path, source_labels=source_labels,
                 target_labels=target_labels, test_limit=test_limit, cache_dir=cache_dir)
    return write_sources(drawn, out_dir, dump_features=dump_features)


def write_sources(drawn: Draw, out_dir: str | Path, *, dump_features: bool = False) -> GeneratedSources:
    """Write the C sources, the input stream and the manifest of a draw (models.draw)."""
    config, qmodel = drawn.configuration, drawn.qmodel
    cut_spec = get_model(config.model).check_cut(config.cut)
    layers = _layers_to_cut(qmodel, config.cut)
    params = SGDParams.from_config(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = _header(config, qmodel, layers, cut_spec, drawn.classes, len(drawn.train_indices),
                     len(drawn.val_indices), len(drawn.test_indices), drawn.head_seed, params, dump_features)
    source = _source(config, qmodel, layers)
    files = [out / HEADER, out / SOURCE]
    for path, text in zip(files, (header, source)):
        path.write_bytes(text.encode())
    stream = input_stream(drawn.collect_inputs, drawn.collect_labels, drawn.test_inputs, drawn.test_labels,
                          _size(qmodel.input_shape))
    (out / INPUTS).write_bytes(stream)
    generated = GeneratedSources(
        out_dir=out, files=files, sha256=_sha256(files), inputs=out / INPUTS,
        inputs_sha256=hashlib.sha256(stream).hexdigest(), draw=drawn, input_frac_bits=qmodel.f_input,
        feature_frac_bits=qmodel.frac_bits(config.cut), feature_bytes=cut_spec.bytes,
        feature_bits=layers[-1].out_bits, expected_fnv1a=fnv1a32(drawn.features.tobytes()),
        replayed_val_loss_bits=[f"0x{np.float32(v).view(np.uint32):08x}" for v in drawn.replayed.val_losses],
        replayed_weights_fnv1a=weights_fnv1a(drawn.replayed.weights),
        dump_features=dump_features,
        notes=list(qmodel.notes))
    (out / MANIFEST).write_text(json.dumps(generated.manifest(), indent=1, sort_keys=True) + "\n")
    return generated


def input_stream(x_collect: np.ndarray, y_collect: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                 input_size: int) -> bytes:
    """The harness's input stream: "DSEI", uint32 LE version, samples, test inputs, input size; then one record per
    collection sample (store order) and per test input: its uint8 label, then input_size int8 values."""
    def records(x, y) -> bytes:
        x = np.asarray(x, dtype=np.int8).reshape(len(x), input_size)
        rows = np.concatenate([np.asarray(y, dtype=np.uint8).reshape(-1, 1), x.view(np.uint8)], axis=1)
        return rows.tobytes()

    head = INPUT_MAGIC + np.array([INPUT_VERSION, len(x_collect), len(x_test), input_size], "<u4").tobytes()
    return head + records(x_collect, y_collect) + records(x_test, y_test)


def _layers_to_cut(qmodel: QuantizedModel, cut: str) -> list[QLayer]:
    layers = []
    for layer in qmodel.layers:
        if layer.kind not in SUPPORTED_KINDS:
            raise NotImplementedError(f"codegen: no firmware kernel for {layer.kind!r} ({layer.name}); "
                                      f"the firmware supports {', '.join(SUPPORTED_KINDS)}")
        layers.append(layer)
        if layer.name == cut:
            if layer.out_bits not in _FEATURE_DTYPES:
                raise NotImplementedError(f"codegen: cut {cut!r} outputs int{layer.out_bits}; the firmware's "
                                          "sample store holds int8 or int16 features")
            return layers
    raise ValueError(f"codegen: cut {cut!r} is not a frozen layer of {qmodel.model}")


def _size(shape) -> int:
    return int(np.prod(shape))


def _header(config, qmodel, layers, cut_spec, classes, n_train, n_val, n_test, head_seed, params: SGDParams,
            dump_features: bool) -> str:
    n = n_train + n_val
    if n_train > _U16 and not config.streaming:  # streaming has no shuffle order
        raise ValueError(f"codegen: at most {_U16} training samples (the shuffle order is uint16), got {n_train}")
    if classes > 255:
        raise ValueError("codegen: at most 255 classes (labels are uint8)")
    input_size = _size(qmodel.input_shape)
    f_feature = qmodel.frac_bits(config.cut)
    lines = [
        "/* Generated by firmware/codegen.py - do not edit. */",
        f"/* task {config.task}, model {config.model} ({config.scheme}), cut {config.cut}, hidden {config.hidden}, "
        f"samples {config.samples} */",
        "#ifndef DSE_MODEL_H",
        "#define DSE_MODEL_H",
        "",
        "#include <stdint.h>",
        "",
        f"#define DSE_N_SAMPLES {n}u",
        f"#define DSE_N_TRAIN {n_train}u",
        f"#define DSE_N_VAL {n_val}u",
        f"#define DSE_N_TEST {n_test}u",
        f"#define DSE_INPUT_SIZE {input_size}u",
        f"#define DSE_INPUT_FRAC_BITS {qmodel.f_input}",
        f"#define DSE_FEATURE {cut_spec.elements}u  /* elements of one stored feature (the head's input width) */",
        f"#define DSE_FEATURE_BITS {layers[-1].out_bits}  /* stored as int{layers[-1].out_bits} */",
        f"#define DSE_FEATURE_BYTES {cut_spec.bytes}u",
        f"#define DSE_FEATURE_FRAC_BITS {f_feature}",
        f"#define DSE_FEATURE_SCALE {c_float(2.0 ** -f_feature)}  /* 2^-{f_feature} */",
        f"#define DSE_ARENA_BYTES {plan_arena(layers).size}u  /* the frozen layers' activations (liveness plan) */",
        f"#define DSE_HIDDEN {config.hidden}u",
        f"#define DSE_CLASSES {classes}u",
        f"#define DSE_BATCH {min(params.batch, max(1, n_train))}u  /* batch {params.batch}, at most the training "
        "samples: a larger batch is one step over all of them, and its buffer holds no more rows */",
        f"#define DSE_EPOCHS {params.epochs}u",
        f"#define DSE_PATIENCE {params.patience}u",
        f"#define DSE_LR {c_float(params.lr)}  /* {params.lr!r} */",
        f"#define DSE_MOMENTUM {c_float(params.momentum)}  /* {params.momentum!r} */",
        f"#define DSE_DECAY {c_float(params.decay)}  /* {params.decay!r} */",
        f"#define DSE_HAS_MOMENTUM {int(params.momentum != 0)}  /* 0: no update buffer at batch 1 */",
        f"#define DSE_RESTORE_BEST {int(params.restore_best)}  /* keep the best epoch's weights */",
        f"#define DSE_HEAD_SEED 0x{head_seed:08x}u",
    ]
    if config.streaming:  # stored builds leave them out (microtl.h's defaults): their sources stay as they were
        lines += [
            "#define DSE_STREAMING 1  /* train on each sample as it is collected (mt_stream_sample); no store */",
            f"#define DSE_REPLAY {config.replay}u  /* ring of the last {config.replay} features */",
        ]
    if dump_features:
        lines += ["#ifndef DSE_DUMP_FEATURES", "#define DSE_DUMP_FEATURES 1", "#endif"]
    lines += [
        "",
        "/* the frozen int8 layers up to the cut: input [DSE_INPUT_SIZE] -> feature [DSE_FEATURE] (pre-activation) */",
        f"void dse_frozen_forward(const int8_t *input, {_C_TYPES[layers[-1].out_bits]} *feature);",
        "/* the region the frozen arena shares with mt_train's work (MT_TRAIN_WORK_BYTES bytes at least, 4-aligned) */",
        "void *dse_work_region(void);",
        "",
        "#endif",
        "",
    ]
    return "\n".join(lines)


def _region(streaming: bool) -> list[str]:
    """The static region of the frozen arena and the trainer's work region, and dse_work_region()."""
    if streaming:
        return [
            "/* streaming: the trainer's work region (update buffer, ...) persists across the collection while every",
            " * forward uses the frozen arena: both live together, so the work region follows the arena (docs/firmware.md) */",
            "#define DSE_ARENA_ALIGNED ((DSE_ARENA_BYTES + 3u) / 4u * 4u)",
            "#define DSE_REGION_BYTES (DSE_ARENA_ALIGNED + MT_TRAIN_WORK_BYTES)",
            "static union { uint32_t align; q7_t q7[DSE_REGION_BYTES]; q15_t q15[DSE_REGION_BYTES / 2]; } dse_arena;",
            "",
            "void *dse_work_region(void)",
            "{",
            "    return dse_arena.q7 + DSE_ARENA_ALIGNED;",
            "}",
            "",
        ]
    return [
        "/* one region for the frozen arena (collection, evaluation) and mt_train's work region (training): never",
        " * live together (docs/firmware.md) */",
        "#define DSE_REGION_BYTES (((DSE_ARENA_BYTES > MT_TRAIN_WORK_BYTES ? DSE_ARENA_BYTES : MT_TRAIN_WORK_BYTES) "
        "+ 3u) / 4u * 4u)",
        "static union { uint32_t align; q7_t q7[DSE_REGION_BYTES]; q15_t q15[DSE_REGION_BYTES / 2]; } dse_arena;",
        "",
        "void *dse_work_region(void)",
        "{",
        "    return &dse_arena;",
        "}",
        "",
    ]


def _check_u16(layer: QLayer, *values: int) -> None:
    for v in values:
        if not 0 <= v <= _U16:
            raise ValueError(f"codegen: layer {layer.name} has a dimension {v} beyond the kernels' uint16 range")


def _params_ref(ctype: str, name: str, init: str, params: list[str]) -> str:
    """`&name` of a static const `ctype` struct holding `init` (its definition appended to params): one struct per
    call site, in flash. Measured on qemu-an386 (docs/firmware.md, "Kernel API") against compound literals, which
    GCC builds on the stack at every call: the static structs give the smaller image and fewer instructions."""
    params.append(f"static const {ctype} {name} = {init};")
    return f"&{name}"


def _dims(shape) -> str:
    """nn_dims initializer of a channels-last shape: (h, w, c), or (steps, c) as a 1 x steps image."""
    h, w, c = shape if len(shape) == 3 else (1, *shape)
    return f"{{{h}, {w}, {c}}}"


def _conv_init(conv: QLayer) -> str:
    """nn_conv_params initializer of a conv2d / conv1d layer."""
    return (f"{{{_dims(conv.in_shape)}, {_dims(conv.out_shape)}, {conv.kernel}, {conv.padding}, {conv.stride}, "
            f"{conv.bias_shift}, {conv.out_shift}}}")


def _call(layer: QLayer, src: str, dst: str, scratch: str, params: list[str]) -> str:
    """The kernel call of one layer; its parameter struct's definition goes to params."""
    p = f"{layer.name}_p"
    if layer.kind in ("conv2d", "conv1d"):
        _check_u16(layer, *layer.in_shape, *layer.out_shape)
        ref = _params_ref("nn_conv_params", p, _conv_init(layer), params)
        return f"nn_{layer.kind}_q7({ref}, {src}, {layer.name}_w, {layer.name}_b, {dst}, {scratch});"
    if layer.kind == "maxpool2d":
        _check_u16(layer, *layer.in_shape, *layer.out_shape)
        ref = _params_ref("nn_pool_params", p, f"{{{_dims(layer.in_shape)}, {_dims(layer.out_shape)}, {layer.kernel}, "
                          f"{layer.stride}}}", params)
        return f"nn_maxpool2d_q7({ref}, {src}, {dst});"
    if layer.kind in ("lstm", "gru"):
        (steps, cin), units = layer.in_shape, layer.out_shape[-1]
        _check_u16(layer, steps, cin, units)
        ref = _params_ref("nn_rnn_params", p, f"{{{steps}, {cin}, {units}, {layer.in_bits}, {layer.out_bits}, "
                          f"{layer.shift_x}, {layer.shift_h}, {layer.f_out}}}", params)
        cell = f"{layer.name}_cell, " if layer.kind == "lstm" else ""
        return (f"nn_{layer.kind}_q7({ref}, {src}, {layer.name}_w, {layer.name}_wh, {layer.name}_b, {cell}{dst});")
    if layer.kind == "fc":
        dim, rows = _size(layer.in_shape), layer.out_shape[-1]
        _check_u16(layer, dim, rows)
        ref = _params_ref("nn_fc_params", p, f"{{{dim}, {rows}, {layer.bias_shift}, {layer.out_shift}}}", params)
        return f"nn_fc_q7({ref}, {src}, {layer.name}_w, {layer.name}_b, {dst}, {scratch});"
    raise NotImplementedError(layer.kind)


def _fused_calls(conv: QLayer, pool: QLayer, src: str, band: str, dst: str, scratch: str,
                 params: list[str]) -> list[str]:
    """conv -> max pool, one pool row at a time: the k_p conv rows it reads into the band, then the pooled row."""
    (h, w, cin), (oh, ow, cout) = conv.in_shape, conv.out_shape
    (ph, pw, _), k, s = pool.out_shape, pool.kernel, pool.stride
    _check_u16(conv, h, w, cin, cout, oh, ow, ph, pw, (ph - 1) * s + k)
    conv_ref = _params_ref("nn_conv_params", f"{conv.name}_p", _conv_init(conv), params)
    band_ref = _params_ref("nn_pool_params", f"{pool.name}_band_p",  # a band of k conv rows -> one pool row
                           f"{{{{{k}, {ow}, {cout}}}, {{1, {pw}, {cout}}}, {k}, {s}}}", params)
    return [
        f"for (uint16_t r = 0; r < {ph}u; r++) {{  /* {conv.name} rows [r*{s}, r*{s} + {k}) -> {pool.name} row r */",
        f"    nn_conv2d_rows_q7({conv_ref}, {src}, {conv.name}_w, {conv.name}_b, {band}, (uint16_t)(r * {s}u), "
        f"(uint16_t)(r * {s}u + {k}u), {scratch});",
        f"    nn_maxpool2d_q7({band_ref}, {band}, {dst} + r * {pw * cout}u);",
        "}",
    ]


def _forward_body(layers: list[QLayer], plan: ArenaPlan, params: list[str]) -> list[str]:
    """The statements of dse_frozen_forward: every step of the liveness plan at its arena offsets (the kernels'
    parameter structs' definitions go to params)."""
    by_name = {layer.name: layer for layer in layers}

    def q7(name: str | None) -> str:
        if name is None:
            return "0"  # a kernel without scratch (the portable kernels ignore it)
        if name in ("input", "feature"):
            return name
        return f"dse_arena.q7 + {plan.offset(name)}"

    def q15(name: str | None) -> str:
        return "0" if name is None else f"dse_arena.q15 + {plan.offset(name) // 2}"

    body = []
    for step in plan.steps:
        head, tail = by_name[step.layers[0]], by_name[step.layers[-1]]
        src, dst = q7(step.src), q7(step.dst)
        if head.relu_in and head.kind != "maxpool2d":
            if step.src == "input":
                raise ValueError(f"codegen: layer {head.name} applies ReLU to the network input")
            if head.in_bits != 8:
                raise NotImplementedError(f"codegen: layer {head.name} applies ReLU to an int16 input")
            body.append(f"nn_relu_q7({src}, {_size(head.in_shape)}u);  /* in place */")
        if step.fused:
            body += _fused_calls(head, tail, src, q7(step.band), dst, q15(step.scratch), params)
        else:
            body.append(_call(head, src, dst, q15(step.scratch), params))
        if tail.kind == "maxpool2d" and tail.relu_in:  # max and ReLU commute: ReLU on the pooled output
            body.append(f"nn_relu_q7({dst}, {_size(tail.out_shape)}u);  /* {tail.name}'s input ReLU, after the "
                        "pool */")
    return ["    " + line for line in body]


def _source(config, qmodel, layers) -> str:
    parts = [
        "/* Generated by firmware/codegen.py - do not edit. */",
        '#include "dse_model.h"',
        '#include "microtl.h"',
        '#include "nn_q7.h"',
        '#include "nn_rnn_q7.h"',
        "",
        f"/* frozen layers of {qmodel.model} up to {config.cut} ({qmodel.scheme}; input frac bits {qmodel.f_input}) */",
    ]
    for layer in layers:
        if layer.weights is None:
            continue
        if layer.kind in ("lstm", "gru"):
            parts += [
                f"/* {layer.name}: {layer.kind} {layer.in_shape} -> {layer.out_shape} int{layer.out_bits}, f_in {layer.f_in}, "
                f"f_w {layer.f_w}, f_wh {layer.f_wh}, biases q3.12, f_out {layer.f_out}, shift_x {layer.shift_x}, "
                f"shift_h {layer.shift_h} (docs/fixed-point-rnn.md) */",
                f"static const q7_t {layer.name}_w[{layer.weights.size}] = {{", _c_array(layer.weights), "};",
                f"static const q7_t {layer.name}_wh[{layer.weights_h.size}] = {{", _c_array(layer.weights_h), "};",
                f"static const q15_t {layer.name}_b[{layer.bias.size}] = {{", _c_array(layer.bias), "};",
            ]
            if layer.kind == "lstm":
                parts.append(f"static q15_t {layer.name}_cell[{layer.out_shape[-1]}];  /* cell state, q4.11 */")
            continue
        parts += [
            f"/* {layer.name}: {layer.kind} {layer.in_shape} -> {layer.out_shape}, f_in {layer.f_in}, f_w {layer.f_w}, "
            f"f_b {layer.f_b}, f_out {layer.f_out}, bias_shift {layer.bias_shift}, out_shift {layer.out_shift} */",
            f"static const q7_t {layer.name}_w[{layer.weights.size}] = {{",
            _c_array(layer.weights),
            "};",
            f"static const q7_t {layer.name}_b[{layer.bias.size}] = {{",
            _c_array(layer.bias),
            "};",
        ]
    plan = plan_arena(layers)
    params: list[str] = []
    body = _forward_body(layers, plan, params)
    if params:
        parts += ["", "/* the kernels' shapes and parameters (nn_q7.h, nn_rnn_q7.h) */", *params]
    parts.append("")
    parts.append(f"/* frozen arena, {plan.size} bytes, planned by liveness (models/arena.py); step: buffer "
                 "[offset, end) */")
    for buf in sorted(plan.buffers, key=lambda b: (b.first, b.offset)):
        parts.append(f"/*   {buf.first}-{buf.last}: {buf.name} [{buf.offset}, {buf.offset + buf.size}) */")
    parts += _region(config.streaming) + [
        f"void dse_frozen_forward(const int8_t *input, {_C_TYPES[layers[-1].out_bits]} *feature)",
        "{",
        *body,
        "}",
        "",
    ]
    return "\n".join(parts)
