"""Integer reference of the recurrent layers (LSTM, GRU) of the "q7" scheme, bit-exact with
firmware/c/nn_rnn_q7.c; also the float LSTM/GRU in numpy with torch's semantics (what the integers approximate).

Formats (docs/fixed-point-rnn.md gives the reasoning):
- input x: int8 or int16 with f_x frac bits; hidden output h: int8 or int16 (the layer's out_bits) with f_h frac
  bits, 0 <= f_h <= 15; h(t-1) is read back from the output sequence (h(-1) = 0), so the output is the state;
- weights int8 (W_ih with f_wx, W_hh with f_wh frac bits, one scale per matrix); biases int16 in q3.12;
- dot products accumulate in int32; each is brought to q3.12 by a rounding shift (shift_x = f_x + f_wx - 12,
  shift_h = f_h + f_wh - 12; a negative shift is a left shift) and a gate pre-activation is the int16-saturated
  sum of the two and the bias(es);
- sigmoid / tanh: q3.12 int16 in, q0.15 out (int32, sigmoid in [0, 32768], tanh in [-32767, 32767]), from a
  257-entry table over [0, 8] (step 1/32) with linear interpolation, mirrored by symmetry;
- LSTM cell state: int16 q4.11 (range +-16), c = ssat16((f*c + ((i*g + 8) >> 4) + 2^14) >> 15);
- h = sat(rs(o * tanh(c), 30 - f_h)) (LSTM), h = sat(rs((32768 - z) * n + z * (h << (15 - f_h)), 30 - f_h)) (GRU).
rs(v, s) is the rounding shift (v + 2^(s-1)) >> s for s > 0 (arithmetic shift: floor), v for s = 0, v << -s for
s < 0. Products of gates are bounded by construction (|.| <= 2^30); the accumulators, left shifts and the
pre-activation sums are checked here and raise OverflowError where the device's int32 would wrap.
Gate order is torch's: LSTM (i, f, g, o), GRU (r, z, n) with the reset gate applied to (W_hn h + b_hn).
"""
from __future__ import annotations

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
GATE_FRAC = 12  # gate pre-activations: q3.12 int16
CELL_FRAC = 11  # LSTM cell state: q4.11 int16
ONE = 1 << 15  # 1.0 in q0.15
LUT_STEP_BITS = 7  # q3.12 input: table index = |x| >> 7 (step 2^7 / 2^12 = 1/32), 7 bits interpolated
LUT_SIZE = 257  # [0, 8] inclusive


def _table(fn) -> np.ndarray:
    """round(fn(k/32) * 2^15) for k = 0..256, clipped to int16: the constants of nn_rnn_q7.c (a test compares)."""
    v = np.floor(fn(np.arange(LUT_SIZE, dtype=np.float64) / 32.0) * ONE + 0.5)
    return np.minimum(v, 32767).astype(np.int64)


TANH_LUT = _table(np.tanh)
SIGMOID_LUT = _table(lambda x: 1.0 / (1.0 + np.exp(-x)))


def _check32(v: np.ndarray, what: str) -> np.ndarray:
    if v.size and (v.min() < INT32_MIN or v.max() > INT32_MAX):
        raise OverflowError(f"q7 rnn kernel: {what} leaves int32 (the device would wrap); lower the frac bits")
    return v


def ssat(v: np.ndarray, bits: int) -> np.ndarray:
    lim = 1 << (bits - 1)
    return np.clip(v, -lim, lim - 1)


def rshift_round(v: np.ndarray, s: int) -> np.ndarray:
    """Rounding arithmetic shift of int64 values: (v + 2^(s-1)) >> s; v << -s when s < 0 (checked for int32)."""
    if s > 0:
        return _check32(v + (1 << (s - 1)), "rounding term") >> s
    if s < 0:
        return _check32(v << -s, "left shift of an accumulator")
    return v


def _lut(a: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table value at |x| = a (0 <= a <= 32768, q3.12) by linear interpolation between entries."""
    i = np.minimum(a >> LUT_STEP_BITS, LUT_SIZE - 2)
    frac = a - (i << LUT_STEP_BITS)  # 0..128 (128 only at a == 32768: the last entry exactly)
    return table[i] + (((table[i + 1] - table[i]) * frac + (1 << (LUT_STEP_BITS - 1))) >> LUT_STEP_BITS)


def tanh_q15(x: np.ndarray) -> np.ndarray:
    """tanh of q3.12 int16 values -> q0.15 as int64 in [-32767, 32767]; odd by construction."""
    x = np.asarray(x, dtype=np.int64)
    y = _lut(np.abs(x), TANH_LUT)
    return np.where(x < 0, -y, y)


def sigmoid_q15(x: np.ndarray) -> np.ndarray:
    """sigmoid of q3.12 int16 values -> q0.15 as int64 in [0, 32768]; sigmoid(-x) = 1 - sigmoid(x) exactly."""
    x = np.asarray(x, dtype=np.int64)
    y = _lut(np.abs(x), SIGMOID_LUT)
    return np.where(x < 0, ONE - y, y)


def _dots(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact integer x @ w.T as int64 (float64 BLAS is exact: every partial sum is far below 2^53)."""
    return _check32(np.rint(x.astype(np.float64) @ w.astype(np.float64).T).astype(np.int64), "accumulator")


def _pre(ax: np.ndarray, ah: np.ndarray, bias: np.ndarray, shift_x: int, shift_h: int) -> np.ndarray:
    total = _check32(rshift_round(ax, shift_x) + rshift_round(ah, shift_h) + bias, "gate pre-activation sum")
    return ssat(total, 16)


def _check_args(x, units, f_out, out_bits, w_ih, w_hh, gates, shift_x, shift_h):
    if not (-31 < shift_x <= 31 and -31 < shift_h <= 31):
        raise ValueError(f"rnn kernel: shifts must be in (-31, 31], got {shift_x}, {shift_h}")
    if not 0 <= f_out <= 15:
        raise ValueError(f"rnn kernel: output frac bits must be in [0, 15], got {f_out}")
    if out_bits not in (8, 16):
        raise ValueError(f"rnn kernel: out_bits must be 8 or 16, got {out_bits}")
    if x.ndim != 3 or w_ih.shape != (gates * units, x.shape[2]) or w_hh.shape != (gates * units, units):
        raise ValueError(f"rnn kernel: shapes x {x.shape}, w_ih {w_ih.shape}, w_hh {w_hh.shape} do not fit "
                         f"{gates} gates x {units} units")


def lstm_q7(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray, shift_x: int, shift_h: int,
            f_out: int, out_bits: int = 8) -> np.ndarray:
    """LSTM over a sequence (nn_lstm_q7): x (N, T, in) int8/int16, w_ih (4H, in) int8, w_hh (4H, H) int8,
    bias (4H,) int16 q3.12 (b_ih + b_hh), gate rows in torch order (i, f, g, o) -> h (N, T, H) int8/int16."""
    units = w_hh.shape[1]
    _check_args(x, units, f_out, out_bits, w_ih, w_hh, 4, shift_x, shift_h)
    n, steps, _ = x.shape
    ax_all = _dots(x.reshape(n * steps, -1), w_ih).reshape(n, steps, 4 * units)
    b = bias.astype(np.int64)
    h = np.zeros((n, units), np.int64)
    c = np.zeros((n, units), np.int64)
    out = np.zeros((n, steps, units), np.int64)
    hs = slice(0, units), slice(units, 2 * units), slice(2 * units, 3 * units), slice(3 * units, 4 * units)
    for t in range(steps):
        pre = _pre(ax_all[:, t], _dots(h, w_hh), b, shift_x, shift_h)
        i, f, o = (sigmoid_q15(pre[:, s]) for s in (hs[0], hs[1], hs[3]))
        g = tanh_q15(pre[:, hs[2]])
        c = ssat((f * c + ((i * g + 8) >> 4) + (1 << 14)) >> 15, 16)
        h = ssat(rshift_round(o * tanh_q15(ssat(c * 2, 16)), 30 - f_out), out_bits)
        out[:, t] = h
    return out.astype(np.int8 if out_bits == 8 else np.int16)


def gru_q7(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray, shift_x: int, shift_h: int,
           f_out: int, out_bits: int = 8) -> np.ndarray:
    """GRU over a sequence (nn_gru_q7): x (N, T, in) int8/int16, w_ih (3H, in), w_hh (3H, H) int8, bias (6H,)
    int16 q3.12 = [b_ih; b_hh], gate rows in torch order (r, z, n) -> h (N, T, H) int8/int16."""
    units = w_hh.shape[1]
    _check_args(x, units, f_out, out_bits, w_ih, w_hh, 3, shift_x, shift_h)
    n, steps, _ = x.shape
    ax_all = _dots(x.reshape(n * steps, -1), w_ih).reshape(n, steps, 3 * units)
    b = bias.astype(np.int64)
    b_i, b_h = b[:3 * units], b[3 * units:]
    rz = slice(0, 2 * units)
    nn_ = slice(2 * units, 3 * units)
    h = np.zeros((n, units), np.int64)
    out = np.zeros((n, steps, units), np.int64)
    for t in range(steps):
        ax, ah = ax_all[:, t], _dots(h, w_hh)
        pre_rz = ssat(_check32(rshift_round(ax[:, rz], shift_x) + rshift_round(ah[:, rz], shift_h)
                               + b_i[rz] + b_h[rz], "gate pre-activation sum"), 16)
        r, z = sigmoid_q15(pre_rz[:, :units]), sigmoid_q15(pre_rz[:, units:])
        hn = ssat(_check32(rshift_round(ah[:, nn_], shift_h) + b_h[nn_], "gate pre-activation sum"), 16)
        pre_n = ssat(_check32(rshift_round(ax[:, nn_], shift_x) + b_i[nn_] + ((r * hn + (1 << 14)) >> 15),
                              "gate pre-activation sum"), 16)
        g = tanh_q15(pre_n)
        mix = (ONE - z) * g + z * (h << (15 - f_out))
        h = ssat(rshift_round(mix, 30 - f_out), out_bits)
        out[:, t] = h
    return out.astype(np.int8 if out_bits == 8 else np.int16)


# ---- float semantics (torch.nn.LSTM / torch.nn.GRU, batch_first, zero initial state) --------------------------

def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def lstm_float(x: np.ndarray, w_ih, w_hh, b_ih, b_hh) -> np.ndarray:
    """torch.nn.LSTM: gates (i, f, g, o) = split(W_ih x + b_ih + W_hh h + b_hh); c = f c + i g; h = o tanh(c)."""
    n, steps, _ = x.shape
    units = w_hh.shape[1]
    h, c = np.zeros((n, units)), np.zeros((n, units))
    out = np.zeros((n, steps, units))
    for t in range(steps):
        a = x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f, g, o = np.split(a, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out[:, t] = h
    return out


def gru_float(x: np.ndarray, w_ih, w_hh, b_ih, b_hh) -> np.ndarray:
    """torch.nn.GRU: r, z from both parts; n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h = (1 - z) n + z h."""
    n, steps, _ = x.shape
    units = w_hh.shape[1]
    h = np.zeros((n, units))
    out = np.zeros((n, steps, units))
    for t in range(steps):
        gx, gh = x[:, t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        r = _sigmoid(gx[:, :units] + gh[:, :units])
        z = _sigmoid(gx[:, units:2 * units] + gh[:, units:2 * units])
        cand = np.tanh(gx[:, 2 * units:] + r * gh[:, 2 * units:])
        h = (1.0 - z) * cand + z * h
        out[:, t] = h
    return out
