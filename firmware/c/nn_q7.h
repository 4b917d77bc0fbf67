/* int8 ("q7") kernels of the frozen network, bit-exact with models/intref.py.
 *
 * Names follow CMSIS-NN's legacy q7 kernels (arm_convolve_HWC_q7_basic, arm_maxpool_q7_HWC, arm_relu_q7,
 * arm_fully_connected_q7), generalised to non-square images; like CMSIS-NN's current API, shapes and parameters
 * come in small const structs (nn_dims, nn_conv_params, nn_pool_params, nn_fc_params) and the data pointers
 * follow them. conv2d, conv1d and fc take a q15 scratch buffer of models/kernels.py scratch_bytes(layer) bytes
 * (placed in the frozen arena by the liveness plan, models/arena.py) for the Cortex-M4 DSP kernels' expanded
 * patches; the portable kernels ignore it (NULL is allowed there).
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
 * Zero padding reads q = 0 outside the input. */
#ifndef DSE_NN_Q7_H
#define DSE_NN_Q7_H

#include <stdint.h>

typedef int8_t q7_t;
typedef int16_t q15_t;

/* The shape of an activation tensor, channels-last: h rows x w columns x c channels. A sequence of `steps` vectors
 * of c values (conv1d) is a 1 x steps image: h = 1, w = steps. */
typedef struct {
    uint16_t h, w, c;
} nn_dims;

/* A convolution's shapes and parameters (conv2d: kernel k x k, equal zero padding and stride in both directions;
 * conv1d: kernel 1 x k, padding and stride along the steps only) and its requantization shifts (above). One
 * const struct per layer, usually static in flash (firmware/codegen.py), so a call passes one pointer for what
 * were 12 positional values. in.c = the weights' input channels, out.c = output channels. */
typedef struct {
    nn_dims in, out;
    uint16_t k, padding, stride, bias_shift, out_shift;
} nn_conv_params;

/* A max pooling's shapes, window k x k and stride (no padding); in.c == out.c. */
typedef struct {
    nn_dims in, out;
    uint16_t k, stride;
} nn_pool_params;

/* A fully connected layer: dim_vec inputs, num_rows outputs, requantization shifts. */
typedef struct {
    uint16_t dim_vec, num_rows, bias_shift, out_shift;
} nn_fc_params;

/* 2-D convolution: in [in.h][in.w][in.c]; wt [out.c][k][k][in.c]; bias [out.c]; out [out.h][out.w][out.c] with
 * out.h = (in.h + 2*padding - k) / stride + 1 (likewise out.w). */
void nn_conv2d_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                  q15_t *scratch);

/* Output rows [oy0, oy1) of the same convolution only (oy1 <= out.h); out receives row oy0 first (rows
 * contiguous, [oy1 - oy0][out.w][out.c]). Zero padding at the top and bottom as in the full convolution, so every
 * band equals the same rows of nn_conv2d_q7's output: a fused conv -> max pool computes one pool row's band. */
void nn_conv2d_rows_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                       uint16_t oy0, uint16_t oy1, q15_t *scratch);

/* 1-D convolution over steps (in.h = out.h = 1): in [in.w][in.c], wt [out.c][k][in.c], out [out.w][out.c],
 * out.w = (in.w + 2*padding - k) / stride + 1; padding along the steps only (conv2d on a 1 x L image). */
void nn_conv1d_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                  q15_t *scratch);

/* Max pooling k x k with stride, no padding, no requantization: out[y][x][c] = max over the window of
 * in[y*stride + i][x*stride + j][c], out.h = (in.h - k) / stride + 1 (likewise out.w); out.h may be smaller (a
 * band of the first out.h rows). */
void nn_maxpool2d_q7(const nn_pool_params *p, const q7_t *in, q7_t *out);

/* ReLU in place: data[i] = max(0, data[i]) for i < size. */
void nn_relu_q7(q7_t *data, uint32_t size);

/* Fully connected: out[o] = requantize(bias[o], sum_k in[k] * wt[o][k]) for o < num_rows, k < dim_vec;
 * in is the row-major flatten of the channels-last input. */
void nn_fc_q7(const nn_fc_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out, q15_t *scratch);

#endif
