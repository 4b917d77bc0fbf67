/* int8 ("q7") kernels of the frozen network, bit-exact with models/intref.py.
 *
 * Names and argument order follow CMSIS-NN's legacy q7 kernels (arm_convolve_HWC_q7_basic, arm_maxpool_q7_HWC,
 * arm_relu_q7, arm_fully_connected_q7), generalised to non-square images.
 * Layout: activations channels-last (HWC; (steps, channels) for 1-D), weights conv2d [out][kh][kw][in],
 * conv1d [out][k][in], fc [out][in]. Nothing is allocated; the caller owns every buffer (in and out must not
 * overlap, except nn_relu_q7 which works in place).
 *
 * Requantization of conv/fc (the q7 scheme, models/quantize.py), per output element o:
 *     acc  = ((int32)bias[o] << bias_shift) + (1 << (out_shift - 1)) + sum_k (int32)x[k] * (int32)w[o][k]
 *     out  = ssat8(acc >> out_shift)          -- clamp to [-128, 127]
 * with 0 <= bias_shift <= 31 and 1 <= out_shift <= 31. The sum is accumulated in 32-bit two's complement
 * (uint32_t wrap-around, so no undefined behaviour; the result equals the exact integer whenever it lies in the
 * int32 range, which models/intref.py checks offline), then converted to int32 and shifted right. A right shift of
 * a negative int32 is implementation-defined in C99; gcc defines it as an arithmetic shift (floor division by
 * 2^out_shift) on both targets used here (x86-64 host and arm-none-eabi, ASR), which is what intref.py computes.
 * Zero padding reads q = 0 outside the input.
 *
 * scratch: the working memory of the Cortex-M4 DSP kernels (nn_q7_m4.c: expanded q15 patches / vectors), of
 * cost_models/kernels.py scratch_bytes(layer) bytes, 2-byte aligned (4 is faster); the portable kernels ignore it and
 * take NULL. A DSP kernel given NULL runs the portable code. */
#ifndef DSE_NN_Q7_H
#define DSE_NN_Q7_H

#include <stdint.h>

typedef int8_t q7_t;
typedef int16_t q15_t;   /* moves here from nn_rnn_q7.h */

/* 2-D convolution, square kernel k x k, equal stride and zero padding in both directions.
 * in: [in_h][in_w][in_ch]; wt: [out_ch][k][k][in_ch]; bias: [out_ch]; out: [out_h][out_w][out_ch] with
 * out_h = (in_h + 2*padding - k) / stride + 1 (likewise out_w). */
void nn_conv2d_q7(const q7_t *in, uint16_t in_h, uint16_t in_w, uint16_t in_ch,
                  const q7_t *wt, uint16_t out_ch, uint16_t k, uint16_t padding, uint16_t stride,
                  const q7_t *bias, uint16_t bias_shift, uint16_t out_shift,
                  q7_t *out, uint16_t out_h, uint16_t out_w, q15_t *scratch);
/* output rows [oy0, oy1) of the same convolution only; out receives row oy0 first (rows contiguous) */
void nn_conv2d_rows_q7(const q7_t *in, uint16_t in_h, uint16_t in_w, uint16_t in_ch,
                       const q7_t *wt, uint16_t out_ch, uint16_t k, uint16_t padding, uint16_t stride,
                       const q7_t *bias, uint16_t bias_shift, uint16_t out_shift,
                       q7_t *out, uint16_t out_w, uint16_t oy0, uint16_t oy1, q15_t *scratch);

/* 1-D convolution over steps: in [in_len][in_ch], wt [out_ch][k][in_ch], out [out_len][out_ch],
 * out_len = (in_len + 2*padding - k) / stride + 1; padding along the steps only (conv2d on a 1 x L image). */
void nn_conv1d_q7(const q7_t *in, uint16_t in_len, uint16_t in_ch,
                  const q7_t *wt, uint16_t out_ch, uint16_t k, uint16_t padding, uint16_t stride,
                  const q7_t *bias, uint16_t bias_shift, uint16_t out_shift,
                  q7_t *out, uint16_t out_len, q15_t *scratch);

/* Max pooling k x k with stride, no padding, no requantization: out[y][x][c] = max over the window of
 * in[y*stride + i][x*stride + j][c], out_h = (in_h - k) / stride + 1 (likewise out_w). */
void nn_maxpool2d_q7(const q7_t *in, uint16_t in_h, uint16_t in_w, uint16_t ch, uint16_t k, uint16_t stride,
                     q7_t *out, uint16_t out_h, uint16_t out_w);

/* ReLU in place: data[i] = max(0, data[i]) for i < size. */
void nn_relu_q7(q7_t *data, uint32_t size);

/* Fully connected: out[o] = requantize(bias[o], sum_k in[k] * wt[o][k]) for o < num_rows, k < dim_vec;
 * in is the row-major flatten of the channels-last input. */
void nn_fc_q7(const q7_t *in, const q7_t *wt, uint16_t dim_vec, uint16_t num_rows,
              uint16_t bias_shift, uint16_t out_shift, const q7_t *bias, q7_t *out, q15_t *scratch);

#endif
