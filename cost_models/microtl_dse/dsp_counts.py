"""Loop counts of the Cortex-M4 DSP kernels (firmware/c/nn_q7_m4.c; the NN_DSP part of firmware/c/nn_rnn_q7.c): what
a cortex-m4 board (qemu-an386, nrf52840dk) runs where `models.kernels.fast_path` says so. The portable kernels'
counts (nn_q7.c: 4-way unrolled nn_dot per kernel row, ...) are in microtl_dse/rnn_counts.py / microtl_dse/model.py.

Pure functions of a zoo layer; each count follows one loop of the C code, so a linear model in them (coefficients
fitted from calibration only) is exact up to the data-dependent branches (table lookups' clamps, saturations):
- conv2d / conv1d (nn_conv_fast, per call over a range of output pixels): pixels go two at a time (`m4_pixel_pairs`:
  two nn_patch calls and one nn_block2) and a leftover pixel (`m4_single_pixels`: one patch, nn_block1). A patch:
  nn_valid_taps per axis, with branches where zero padding clips the window (`m4_pad_lo`, `m4_pad_hi`); K = taps x
  in_ch values expanded to ceil4(K) q15. With in_ch % 4 == 0 per valid kernel row a loop pass (`m4_patch_rows`), the
  valid taps' groups of 4 expanded (`m4_patch_expand`), the padded taps' groups zeroed (`m4_patch_zero`). With few
  channels (RGB) the q7 patch is staged first (`m4_staged_patches`; per valid kernel row `m4_stage_rows`; the run's
  word copies `m4_stage_words` and byte tail `m4_stage_bytes`; the zero fills around it, which gcc compiles to memset
  calls, `m4_memset_calls`, `m4_memset_bytes`), then expanded whole (`m4_stage_groups` = K // 4, `m4_vec_tails`).
  nn_block2 per pair of output channels: G = K // 4 groups of the hand-scheduled 2x2 loop (`m4_b2_groups`), the
  pass's set-up and four outputs (`m4_b2_passes`), a zero-padded last group (`m4_b2_tails`); an odd channel runs
  nn_dot_q15 per pixel (`m4_dot_groups`, `m4_dot_calls`, `m4_dot_tails`). nn_block1 likewise (`m4_b1_*`). The
  weights' tail words are read byte by byte: branches on K % 4 > 1 and > 2 per code site (`m4_b2_tail_gt1`,
  `m4_b2_tail_gt2`, the b1 and dot sites' alike; the expanded vector's `m4_vec_tail_gt1`, `m4_vec_tail_gt2`).
- fc: the input expanded once (`m4_vec_groups`, `m4_vec_tails`), then nn_block1 over the rows.
- maxpool2d (channels % 4 == 0): per output pixel and word of 4 channels (`m4_pool_words`) k x k SSUB8/SEL maxima
  (`m4_pool_maxes`) in k window rows (`m4_pool_krows`), per output pixel / row a loop pass (`m4_pool_pixels`,
  `m4_pool_rows`).
- ReLU: four bytes per word (`m4_relu_words`), the last size % 4 bytes one by one (`m4_relu_bytes`).
- LSTM / GRU: the gate rows of one unit (LSTM: 4 rows; GRU: 3 rows of two units at once, 6 rows, or of a last odd
  unit, 3 rows) in one call (`m4_rnn_calls`), per group of 4 vector elements one pass (`m4_rnn_groups_8`,
  `m4_rnn_groups_16`: the vector's load and unpack by its width; `m4_rnn_groups6`: the six-row loop's extra load of
  its end) and per row and group one word, two SXTB16, two SMLAD (`m4_rnn_row_groups`); a last partial group
  (`m4_rnn_tails`, its r elements `m4_rnn_tail_elems`, per row `m4_rnn_tail_rows` and `m4_rnn_tail_row_bytes`);
  per row the shifted result (`m4_rnn_rows`). Per unit-step and step the kind's gate arithmetic as in the portable
  model (lstm_unit_steps, gru_unit_steps, rnn_steps).
"""
from __future__ import annotations

from math import prod

CONV = ("m4_pixel_pairs", "m4_single_pixels", "m4_pad_lo", "m4_pad_hi", "m4_patch_rows", "m4_patch_expand",
        "m4_patch_zero", "m4_staged_patches", "m4_stage_rows", "m4_memset_calls", "m4_memset_bytes", "m4_stage_words",
        "m4_stage_bytes", "m4_stage_groups", "m4_b2_groups", "m4_b2_passes", "m4_b2_tails",
        "m4_b1_groups", "m4_b1_passes", "m4_b1_tails", "m4_dot_groups", "m4_dot_calls", "m4_dot_tails",
        "m4_b2_tail_gt1", "m4_b2_tail_gt2", "m4_b1_tail_gt1", "m4_b1_tail_gt2", "m4_dot_tail_gt1", "m4_dot_tail_gt2",
        "m4_vec_groups", "m4_vec_tails", "m4_vec_tail_gt1", "m4_vec_tail_gt2")
POOL = ("m4_pool_maxes", "m4_pool_krows", "m4_pool_words", "m4_pool_pixels", "m4_pool_rows")
RELU = ("m4_relu_words", "m4_relu_bytes")
RNN = ("m4_rnn_calls", "m4_rnn_groups_8", "m4_rnn_groups_16", "m4_rnn_groups6", "m4_rnn_row_groups", "m4_rnn_tails",
       "m4_rnn_tail_elems", "m4_rnn_tail_rows", "m4_rnn_tail_row_bytes", "m4_rnn_rows")
COUNTS = (*CONV, *POOL, *RELU, *RNN)


def tap_ranges(out_len: int, stride: int, padding: int, k: int, n: int) -> list[tuple[int, int]]:
    """(k0, k1) of each output position: the taps inside the input (firmware/c/nn_q7.c nn_valid_taps)."""
    out = []
    for o in range(out_len):
        start = o * stride - padding
        lo = -start if start < 0 else 0
        out.append((lo, max(min(n - start, k), lo)))
    return out


def _geometry(layer):
    """(kh, kw, in_ch, out_ch, tap ranges per output row, per output column, out_w) of a conv layer as nn_conv_fast
    sees it (conv1d: a 1 x len image, kernel 1 x k)."""
    k, s, p = layer.kernel, layer.stride, layer.padding
    cin, cout = layer.in_shape[-1], layer.out_shape[-1]
    if layer.kind == "conv1d":
        n = layer.out_shape[0]
        return 1, k, cin, cout, [(0, 1)], tap_ranges(n, s, p, k, layer.in_shape[0]), n
    rows = tap_ranges(layer.out_shape[0], s, p, k, layer.in_shape[0])
    cols = tap_ranges(layer.out_shape[1], s, p, k, layer.in_shape[1])
    return k, k, cin, cout, rows, cols, layer.out_shape[1]


def _words_bytes(n: int) -> tuple[int, int]:
    """nn_copy_q7 / nn_zero_q7 of n bytes: word passes and byte passes."""
    return n // 4, n % 4


def _block(c: dict, prefix: str, pixels: int, K: int, cout: int) -> None:
    """nn_block2 (prefix b2, `pixels` = 2 per call) or nn_block1 (b1, 1) over all output channels, once."""
    g, r = K // 4, K % 4
    pairs, odd = cout // 2, cout % 2
    c[f"m4_{prefix}_groups"] += pairs * g
    c[f"m4_{prefix}_passes"] += pairs
    c[f"m4_{prefix}_tails"] += pairs * (r > 0)
    _tail_words(c, prefix, pairs, r)
    # the odd channel: nn_dot_q15 once per pixel of the block
    c["m4_dot_groups"] += odd * pixels * g
    c["m4_dot_calls"] += odd * pixels
    c["m4_dot_tails"] += odd * pixels * (r > 0)
    _tail_words(c, "dot", odd * pixels, r)


def _tail_words(c: dict, site: str, n: int, r: int) -> None:
    """n tails of weight words of r = K % 4 bytes at one code site (nn_tail_word inlined there: branches on r > 1
    and r > 2, scheduled differently per site)."""
    c[f"m4_{site}_tail_gt1"] += n * (r > 1)
    c[f"m4_{site}_tail_gt2"] += n * (r > 2)


def _vec_tail(c: dict, n: int) -> None:
    """nn_expand_vector's zero-padded last group of n % 4 values (branches on r > 1 and r > 2)."""
    r = n % 4
    c["m4_vec_tails"] += r > 0
    c["m4_vec_tail_gt1"] += r > 1
    c["m4_vec_tail_gt2"] += r > 2


def _patch(c: dict, kh: int, kw: int, cin: int, ty: tuple[int, int], tx: tuple[int, int]) -> None:
    """One nn_patch with valid kernel rows ty = (ky0, ky1) and columns tx = (kx0, kx1) of kh x kw."""
    ry, rx = ty[1] - ty[0], tx[1] - tx[0]
    # nn_valid_taps per axis: branches where the window starts before the input / ends past it (zero padding)
    c["m4_pad_lo"] += (ty[0] > 0) + (tx[0] > 0)
    c["m4_pad_hi"] += (ty[1] < kh) + (tx[1] < kw)
    if cin % 4 == 0:
        c["m4_patch_rows"] += ry
        c["m4_patch_expand"] += ry * rx * cin // 4
        c["m4_patch_zero"] += (kh * kw - ry * rx) * cin // 4
        return
    row = kw * cin
    K = kh * row
    c["m4_staged_patches"] += 1
    c["m4_stage_rows"] += ry
    # the zero fills above and below and per valid row left / right of the copied run: gcc turns nn_zero_q7's two
    # loops into memset calls (newlib's, byte by byte) of the whole words and of the byte tail, each when not empty
    for n in [ty[0] * row, (kh - ty[1]) * row] + ry * [tx[0] * cin, (kw - tx[1]) * cin]:
        for part in (n & ~3, n & 3):
            c["m4_memset_calls"] += part > 0
            c["m4_memset_bytes"] += part
    w, b = _words_bytes(rx * cin)  # nn_copy_q7: inline word and byte loops
    c["m4_stage_words"] += ry * w
    c["m4_stage_bytes"] += ry * b
    c["m4_stage_groups"] += K // 4
    _vec_tail(c, K)


def conv_counts(layer, out_rows=None, band: int | None = None) -> dict[str, float]:
    """Counts of nn_conv2d_q7 / nn_conv1d_q7 / nn_conv2d_rows_q7 calls of `layer` (fast). out_rows: the output rows
    computed in call order (fused conv -> pool: models.arena.band_rows), `band` rows per call; default one call
    over every row."""
    c = dict.fromkeys(COUNTS, 0.0)
    kh, kw, cin, cout, vrows, vcols, out_w = _geometry(layer)
    rows = list(range(len(vrows))) if out_rows is None else list(out_rows)
    band = len(rows) if band is None else band
    K = kh * kw * cin
    for start in range(0, len(rows), max(band, 1)):
        pixels = [(oy, ox) for oy in rows[start:start + band] for ox in range(out_w)]
        for i in range(0, len(pixels) - 1, 2):
            c["m4_pixel_pairs"] += 1
            _block(c, "b2", 2, K, cout)
        if len(pixels) % 2:
            c["m4_single_pixels"] += 1
            _block(c, "b1", 1, K, cout)
        for oy, ox in pixels:
            _patch(c, kh, kw, cin, vrows[oy], vcols[ox])
    return c


def fc_counts(layer) -> dict[str, float]:
    """One nn_fc_q7 call (fast): the input vector expanded, then nn_block1 over the rows."""
    c = dict.fromkeys(COUNTS, 0.0)
    dim = prod(layer.in_shape)
    c["m4_vec_groups"] += dim // 4
    _vec_tail(c, dim)
    _block(c, "b1", 1, dim, layer.elements)
    return c


def pool_counts(layer, out_rows: int | None = None, calls: int = 1) -> dict[str, float]:
    """`calls` nn_maxpool2d_q7 calls (fast, channels % 4 == 0) of out_rows output rows each (default: the layer's)."""
    c = dict.fromkeys(COUNTS, 0.0)
    oh, ow, ch = layer.out_shape
    rows = (oh if out_rows is None else out_rows) * calls
    pixels = rows * ow
    words = pixels * (ch // 4)
    c["m4_pool_rows"] = rows
    c["m4_pool_pixels"] = pixels
    c["m4_pool_words"] = words
    c["m4_pool_krows"] = words * layer.kernel
    c["m4_pool_maxes"] = words * layer.kernel * layer.kernel
    return c


def relu_counts(size: int) -> dict[str, float]:
    """One nn_relu_q7 call of `size` bytes (fast)."""
    c = dict.fromkeys(COUNTS, 0.0)
    c["m4_relu_words"], c["m4_relu_bytes"] = _words_bytes(size)
    return c


def _gate_call(c: dict, bits: int, n: int, rows: int) -> None:
    """One call of the gate-row products: `rows` rows (3, 4 or 6) of n elements, a vector of `bits`."""
    g, r = n // 4, n % 4
    c["m4_rnn_calls"] += 1
    c[f"m4_rnn_groups_{bits}"] += g
    c["m4_rnn_groups6"] += g if rows == 6 else 0
    c["m4_rnn_row_groups"] += rows * g
    c["m4_rnn_rows"] += rows
    if r:
        c["m4_rnn_tails"] += 1
        c["m4_rnn_tail_elems"] += r
        c["m4_rnn_tail_rows"] += rows
        c["m4_rnn_tail_row_bytes"] += rows * r


def recurrent_counts(layer, in_bits: int) -> dict[str, float]:
    """One nn_lstm_q7 / nn_gru_q7 call (fast): the gate-row calls of its input and (from the second step)
    recurrent parts. The per unit-step gate arithmetic is microtl_dse.rnn_counts's (lstm_unit_steps, ...)."""
    c = dict.fromkeys(COUNTS, 0.0)
    steps, in_dim = layer.in_shape
    units = layer.units
    if layer.kind == "lstm":
        calls = [(units, 4)]
    else:  # GRU: two units per call, a last odd one alone
        calls = [(units // 2, 6)] + ([(1, 3)] if units % 2 else [])
    for n_calls, rows in calls:
        for _ in range(n_calls):
            for _ in range(steps):
                _gate_call(c, in_bits, in_dim, rows)
            for _ in range(max(steps - 1, 0)):
                _gate_call(c, layer.out_bits, units, rows)
    return c
