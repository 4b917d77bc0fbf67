"""The counts model of one frozen-layer kernel call, fitted on the kernel micro-benchmark's measurements
(firmware/kernel_bench.py measures; this prices): the counts the whole-firmware cost model uses
(cost_models.microtl_dse.rnn_counts, microtl_dse.model's frozen counts; cost_models.microtl_dse.dsp_counts for the DSP kernels), NNLS per
kernel kind, and each shape predicted leaving it out.

A `shape` is any object with firmware.kernel_bench.KernelShape's fields (kind, steps, in_dim, units, in_bits) and its
`layer()` (a zoo LayerSpec); a `run` any object with `shape` and `instructions` (KernelRun): the measurements pass
as data, firmware is not imported.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

from cost_models.microtl_dse import dsp_counts as ff
from cost_models.microtl_dse import rnn_counts as rnn
from models.kernels import fast_path
from models.zoo import LayerSpec


def call_counts(shape, kernels: str = "portable") -> dict[str, float]:
    """The whole-firmware cost model's counts of one call (cost_models.microtl_dse.rnn_counts; microtl_dse.model's frozen counts
    for conv1d / conv2d / maxpool2d / fc / relu; kernels="fast": cost_models.microtl_dse.dsp_counts where
    models.kernels.fast_path takes the shape) plus `calls` (one per call: entry, set-up, the marker; the cost
    model's layer_calls). Counts identical by construction for a kind are merged into one term, which NNLS could
    only split arbitrarily."""
    layer = shape.layer()
    if kernels == "fast" and (shape.kind == "relu" or fast_path(layer, "cortex-m4")):
        return _fast_counts(shape, layer)
    dots = ("dot_tail_macs", "long_dot_calls", "tail_dot_calls")
    if shape.kind == "conv1d":
        c = rnn.conv_counts(layer)
        # one dot product per output (dot_calls = outputs: one count for both), nn_valid_taps per position
        return {"macs": c["macs"], "dot_calls": c["dot_calls"], **{k: c[k] for k in dots},
                "positions": layer.out_shape[0], "calls": 1}
    if shape.kind == "conv2d":
        c = rnn.conv_counts(layer)  # one dot call per output and valid kernel row
        return {"macs": c["macs"], "dot_calls": c["dot_calls"], **{k: c[k] for k in dots},
                "pixels": layer.elements // layer.out_shape[-1], "output_elements": layer.elements,
                "rows": layer.out_shape[0], "calls": 1}
    if shape.kind == "fc":
        c = rnn.fc_counts(layer)  # dot_calls = output_elements = rows: one count for both
        return {"macs": c["macs"], **{k: c[k] for k in dots}, "outputs": c["dot_calls"], "calls": 1}
    if shape.kind == "maxpool2d":
        return {"compares": layer.compares, "pixels": layer.elements // layer.out_shape[-1],
                "output_elements": layer.elements, "rows": layer.out_shape[0], "calls": 1}
    if shape.kind == "relu":
        return {"relu_elements": layer.elements if layer.relu else 0, "calls": 1}
    counts = {k: v for k, v in rnn.recurrent_counts(layer, shape.in_bits).items()
              if k not in ("lstm_unit_steps", "gru_unit_steps")}
    counts["unit_steps"] = shape.steps * shape.units
    return {**counts, "calls": 1}


def _fast_counts(shape, layer: LayerSpec) -> dict[str, float]:
    """call_counts of a DSP kernel call (cost_models.microtl_dse.dsp_counts; the recurrent kernels' per unit-step and step
    counts as in the portable model). Zero counts are left out."""
    if shape.kind in ("conv1d", "conv2d"):
        c = ff.conv_counts(layer)
    elif shape.kind == "fc":
        c = ff.fc_counts(layer)
    elif shape.kind == "maxpool2d":
        c = ff.pool_counts(layer)
    elif shape.kind == "relu":
        c = ff.relu_counts(shape.in_dim)
    else:
        c = {**ff.recurrent_counts(layer, shape.in_bits), "unit_steps": shape.steps * shape.units,
             "rnn_steps": shape.steps}
    return {**{k: float(v) for k, v in c.items() if v}, "calls": 1}


def fit(runs: list, kernels: str = "portable") -> dict[str, float]:
    """NNLS of the calls' instructions on their counts (relative residuals), one kernel kind at a time."""

    names = sorted({k for r in runs for k in call_counts(r.shape, kernels)})
    X = np.array([[call_counts(r.shape, kernels).get(k, 0.0) for k in names] for r in runs])
    y = np.array([float(r.instructions) for r in runs])
    A = X / y[:, None]
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    c, _ = nnls(A / scale, np.ones_like(y), maxiter=100 * len(names))
    return {k: float(v) for k, v in zip(names, c / scale)}


def predict(coef: dict[str, float], shape, kernels: str = "portable") -> float:
    return sum(coef.get(k, 0.0) * v for k, v in call_counts(shape, kernels).items())


def leave_one_out(runs: list, kernels: str = "portable") -> list[tuple[object, float]]:
    """(run, predicted / measured - 1) with each shape predicted by the fit on the other shapes of its kind."""
    out = []
    for r in runs:
        others = [o for o in runs if o.shape.kind == r.shape.kind and o.shape != r.shape]
        out.append((r, predict(fit(others, kernels), r.shape, kernels) / r.instructions - 1))
    return out
