"""Loop counts of the sequence kernels (firmware/c/nn_rnn_q7.c: LSTM, GRU; firmware/c/nn_q7.c: conv1d with zero
padding) and their memory terms, for the firmware cost model (cost_models/microtl_dse/model.py).

Pure functions of a zoo `LayerSpec` and the width of its input (the previous layer's out_bits). What each count
follows, per call of a kernel over `steps` steps, `in_dim` inputs and `units` outputs:
- nn_lstm_q7 / nn_gru_q7: the gate dot products `nn_dot_any` (input part every step, recurrent part from the second
  step: h(-1) = 0 skips it), counted as MACs by the width of the vector read (int8 or int16 loads) and as calls;
  per unit and step the gate pre-activations, table sigmoid/tanh and the state update (LSTM: 4 gates, 5 table
  lookups, the cell update; GRU: 3 gates and the candidate's recurrent part, 3 lookups, the mix). Lookups and gates
  are a fixed number per unit-step of a kind, so one count per kind (`lstm_unit_steps`, `gru_unit_steps`) carries
  them: no shape separates them. Per step the pointer set-up. (Per unit of a call - the first step's skipped
  recurrent gates - is not a count of its own: gates x (2 x unit-steps - units) is the dot calls, so units follow
  from the dot calls and unit-steps of each kind.)
- nn_conv1d_q7 / nn_conv2d_q7 with zero padding: only the taps inside the input are multiplied (nn_valid_taps), so
  the MACs, the dot products' run lengths and their 4-way unrolled tails follow the valid taps of each position.
Data-dependent and not counted: the sign and clamp branches of the table lookups and the saturations (a few
instructions per unit-step).
"""
from __future__ import annotations

from typing import Sequence

from models.zoo import LayerSpec

RECURRENT = ("lstm", "gru")
GATES = {"lstm": 4, "gru": 3}
Q15 = 2  # bytes of an int16 bias / cell state
COUNTS = ("rnn_macs_8", "rnn_macs_16", "rnn_dot_calls", "lstm_unit_steps", "gru_unit_steps", "rnn_steps")


def valid_taps(out_len: int, stride: int, padding: int, k: int, n: int) -> list[int]:
    """Taps of each output position whose input position lies in [0, n) (firmware/c/nn_q7.c nn_valid_taps)."""
    out = []
    for o in range(out_len):
        start = o * stride - padding
        lo = -start if start < 0 else 0
        hi = max(min(n - start, k), lo)
        out.append(hi - lo)
    return out


def conv_counts(layer: LayerSpec, out_rows: Sequence[int] | None = None) -> dict[str, int]:
    """macs, dot calls (one per output and valid kernel row), the dot products' tail MACs (run % 4), and the calls
    that run the unrolled loop or a tail, of one conv1d / conv2d call, from the valid taps of each position.
    conv2d's `out_rows`: the output rows computed, with repeats (a fused conv -> pool's bands,
    models.arena.band_rows); default every row once."""
    k, s, p = layer.kernel, layer.stride, layer.padding
    cin, cout = layer.in_shape[-1], layer.out_shape[-1]
    if layer.kind == "conv1d":
        cols = valid_taps(layer.out_shape[0], s, p, k, layer.in_shape[0])
        rows = [1]
    else:
        rows = valid_taps(layer.out_shape[0], s, p, k, layer.in_shape[0])
        rows = rows if out_rows is None else [rows[r] for r in out_rows]
        cols = valid_taps(layer.out_shape[1], s, p, k, layer.in_shape[1])
    runs = [c * cin for c in cols]
    # per output channel: for each (row position, column position), rows[oy] dot calls of length runs[ox]
    row_taps = sum(rows)
    per_run = cout * (row_taps if layer.kind == "conv2d" else 1)  # calls of each run length in runs
    return {"macs": cout * row_taps * sum(runs), "dot_calls": per_run * len(runs),
            "dot_tail_macs": per_run * sum(r % 4 for r in runs),
            # nn_dot enters its 4-way unrolled loop only for runs of 4 or more (about 11 instructions; digits_cnn's
            # conv1, 3 taps x 1 channel, never does) and its tail loop only for a remainder
            "long_dot_calls": per_run * sum(1 for r in runs if r >= 4),
            "tail_dot_calls": per_run * sum(1 for r in runs if r % 4)}


def fc_counts(layer: LayerSpec) -> dict[str, int]:
    """macs, dot calls (one per output: a run of the whole input), tail MACs and the calls that run nn_dot's
    unrolled loop or a tail, of one nn_fc_q7 call (the names of conv_counts)."""
    run, outputs = layer.macs // max(layer.elements, 1), layer.elements
    return {"macs": layer.macs, "dot_calls": outputs, "dot_tail_macs": outputs * (run % 4),
            "long_dot_calls": outputs if run >= 4 else 0, "tail_dot_calls": outputs if run % 4 else 0}


def recurrent_counts(layer: LayerSpec, in_bits: int) -> dict[str, float]:
    """Counts of one nn_lstm_q7 / nn_gru_q7 call (see the module docstring)."""
    c = dict.fromkeys(COUNTS, 0.0)
    steps, in_dim = layer.in_shape
    units = layer.units
    rows = GATES[layer.kind] * units
    c[f"rnn_macs_{in_bits}"] += steps * rows * in_dim
    c[f"rnn_macs_{layer.out_bits}"] += max(steps - 1, 0) * rows * units
    c["rnn_dot_calls"] = steps * rows + max(steps - 1, 0) * rows
    c[f"{layer.kind}_unit_steps"] = steps * units
    c["rnn_steps"] = steps
    return c


def frozen_recurrent_counts(layers: tuple[LayerSpec, ...]) -> dict[str, float]:
    """Sum of recurrent_counts over the frozen layers (input layer first, as Workload.layers)."""
    total = dict.fromkeys(COUNTS, 0.0)
    for prev, layer in zip(layers, layers[1:]):
        if layer.kind in RECURRENT:
            for k, v in recurrent_counts(layer, prev.out_bits).items():
                total[k] += v
    return total


def state_bytes(layers: tuple[LayerSpec, ...]) -> int:
    """Static recurrent state besides the activations: the LSTM's int16 cell (codegen: <name>_cell[units])."""
    return sum(Q15 * layer.units for layer in layers[1:] if layer.kind == "lstm")


def weight_bytes(layer: LayerSpec, bias_bytes: int) -> int:
    """Flash of one frozen layer's constants: int8 weights; biases int16 (q3.12) for LSTM/GRU whatever the
    scheme, else the scheme's bias width."""
    return layer.weights + layer.biases * (Q15 if layer.kind in RECURRENT else bias_bytes)
