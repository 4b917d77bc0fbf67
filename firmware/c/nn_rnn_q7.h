/* Recurrent int8 kernels (LSTM, GRU) of the q7 scheme, bit-exact with models/intref_rnn.py; the fixed-point
 * formats are documented in docs/fixed-point-rnn.md.
 *
 * Layout: in [steps][in_dim], out [steps][units] (channels-last sequences); w_ih [gates*units][in_dim] and
 * w_hh [gates*units][units] int8, gate blocks in torch order (LSTM i, f, g, o; GRU r, z, n). Activations are int8
 * or int16 (in_bits / out_bits = 8 or 16; the pointers are int8_t* or int16_t* accordingly). The output sequence
 * is the state: h(t-1) is read from out row t-1 (h(-1) = 0), so out must not overlap in. Nothing is allocated;
 * the LSTM's cell state lives in the caller's cell[units] (int16 q4.11, zeroed by the kernel).
 *
 * Per step and unit: gate pre-activation (q3.12 int16)
 *     pre = ssat16(rs(sum_k x[k] * w_ih[row][k], shift_x) + rs(sum_k h[k] * w_hh[row][k], shift_h) + bias)
 * with rs the rounding shift ((v + 2^(s-1)) >> s for s > 0, v << -s for s < 0), int32 two's complement (uint32
 * wrap-around: equal to the exact result whenever it lies in int32, which models/intref_rnn.py checks offline);
 * sigmoid / tanh from nn_sigmoid_q15 / nn_tanh_q15 (q3.12 -> q0.15);
 * LSTM: c = ssat16((f*c + ((i*g + 8) >> 4) + 2^14) >> 15); h = sat(rs(o * tanh(ssat16(2c)), 30 - f_out));
 * GRU:  n = tanh(ssat16(rs(ax_n, shift_x) + b_in + ((r * ssat16(rs(ah_n, shift_h) + b_hn) + 2^14) >> 15)));
 *       h = sat(rs((32768 - z) * n + z * (h << (15 - f_out)), 30 - f_out)).
 * Requires 0 <= f_out <= 15 and -31 < shift_x, shift_h <= 31. >> of a negative int32 is arithmetic (gcc). */
#ifndef DSE_NN_RNN_Q7_H
#define DSE_NN_RNN_Q7_H

#include <stdint.h>

#include "nn_q7.h"  /* q7_t, q15_t */

/* sigmoid / tanh of a q3.12 value, in q0.15 (sigmoid in [0, 32768], tanh in [-32767, 32767]): 257-entry table
 * over [0, 8] with linear interpolation, mirrored by symmetry. */
int32_t nn_sigmoid_q15(int16_t x);
int32_t nn_tanh_q15(int16_t x);

/* A recurrent layer's shapes and fixed-point parameters: steps x in_dim in (int8 or int16: in_bits 8 / 16) ->
 * steps x units out (out_bits 8 / 16); shift_x, shift_h, f_out as above. One const struct per layer (static in
 * flash, firmware/codegen.py). */
typedef struct {
    uint16_t steps, in_dim, units;
    uint8_t in_bits, out_bits;
    int16_t shift_x, shift_h;
    uint16_t f_out;
} nn_rnn_params;

/* bias [4*units] int16 q3.12 (b_ih + b_hh of torch); cell [units] int16 scratch. */
void nn_lstm_q7(const nn_rnn_params *p, const void *in, const q7_t *w_ih, const q7_t *w_hh, const q15_t *bias,
                q15_t *cell, void *out);

/* bias [6*units] int16 q3.12: b_ih (r, z, n) then b_hh (r, z, n) of torch. */
void nn_gru_q7(const nn_rnn_params *p, const void *in, const q7_t *w_ih, const q7_t *w_hh, const q15_t *bias,
               void *out);

#endif
