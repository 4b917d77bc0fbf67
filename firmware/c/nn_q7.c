/* int8 kernels: see nn_q7.h for the exact integer semantics (bit-exact with models/intref.py). */
#include "nn_q7.h"

/* (bias << bias_shift) + round, in 32-bit two's complement (see nn_q7.h). */
static uint32_t nn_acc_init(q7_t bias, uint16_t bias_shift, uint16_t out_shift)
{
    return ((uint32_t)(int32_t)bias << bias_shift) + ((uint32_t)1 << (out_shift - 1));
}

/* ssat8((int32)acc >> out_shift); gcc: uint32 -> int32 conversion is modulo 2^32, >> of a negative int32 is
 * arithmetic. */
static q7_t nn_finish(uint32_t acc, uint16_t out_shift)
{
    int32_t v = (int32_t)acc;
    v >>= out_shift;
    if (v > 127) return 127;
    if (v < -128) return -128;
    return (q7_t)v;
}

/* acc + sum_{i<n} x[i] * w[i] in 32-bit wrap-around (unrolled by 4; integer sums: the order does not matter) */
static uint32_t nn_dot(uint32_t acc, const q7_t *x, const q7_t *w, uint32_t n)
{
    while (n >= 4) {
        acc += (uint32_t)((int32_t)x[0] * (int32_t)w[0]);
        acc += (uint32_t)((int32_t)x[1] * (int32_t)w[1]);
        acc += (uint32_t)((int32_t)x[2] * (int32_t)w[2]);
        acc += (uint32_t)((int32_t)x[3] * (int32_t)w[3]);
        x += 4;
        w += 4;
        n -= 4;
    }
    while (n--) acc += (uint32_t)((int32_t)*x++ * (int32_t)*w++);
    return acc;
}

/* the kernel taps [*k0, *k1) whose input position o * stride + t - padding lies in [0, n) */
static void nn_valid_taps(uint32_t o, uint16_t stride, uint16_t padding, uint16_t k, uint16_t n,
                          uint32_t *k0, uint32_t *k1)
{
    int32_t start = (int32_t)(o * stride) - (int32_t)padding;  /* input position of tap 0 */
    int32_t lo = start < 0 ? -start : 0;
    int32_t hi = (int32_t)n - start;
    if (hi > (int32_t)k) hi = (int32_t)k;
    if (hi < lo) hi = lo;
    *k0 = (uint32_t)lo;
    *k1 = (uint32_t)hi;
}

void nn_conv2d_rows_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                       uint16_t oy0, uint16_t oy1, q15_t *scratch)
{
    const uint16_t in_h = p->in.h, in_w = p->in.w, in_ch = p->in.c, out_w = p->out.w, out_ch = p->out.c;
    const uint16_t k = p->k, padding = p->padding, stride = p->stride;
    const uint16_t bias_shift = p->bias_shift, out_shift = p->out_shift;
    uint32_t oy, ox, o, ky, ky0, ky1, kx0, kx1;
    (void)scratch;
    for (oy = oy0; oy < oy1; oy++) {
        nn_valid_taps(oy, stride, padding, k, in_h, &ky0, &ky1);  /* taps outside: zero padding, add 0 */
        for (ox = 0; ox < out_w; ox++) {
            uint32_t ix0, run;
            nn_valid_taps(ox, stride, padding, k, in_w, &kx0, &kx1);
            ix0 = ox * stride + kx0 - padding;
            run = (kx1 - kx0) * in_ch;  /* taps kx0..kx1-1 of a kernel row: contiguous in input and weights */
            for (o = 0; o < out_ch; o++) {
                uint32_t acc = nn_acc_init(bias[o], bias_shift, out_shift);
                const q7_t *w = wt + (uint32_t)o * k * k * in_ch;
                for (ky = ky0; ky < ky1; ky++) {
                    uint32_t iy = oy * stride + ky - padding;
                    acc = nn_dot(acc, in + (iy * in_w + ix0) * in_ch, w + (ky * k + kx0) * in_ch, run);
                }
                out[((oy - oy0) * out_w + ox) * out_ch + o] = nn_finish(acc, out_shift);
            }
        }
    }
}

void nn_conv2d_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                  q15_t *scratch)
{
    nn_conv2d_rows_q7(p, in, wt, bias, out, 0, p->out.h, scratch);
}

void nn_conv1d_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                  q15_t *scratch)
{
    const uint16_t in_len = p->in.w, in_ch = p->in.c, out_len = p->out.w, out_ch = p->out.c;
    const uint16_t k = p->k, padding = p->padding, stride = p->stride;
    const uint16_t bias_shift = p->bias_shift, out_shift = p->out_shift;
    uint32_t ox, o, kx0, kx1;
    (void)scratch;
    for (ox = 0; ox < out_len; ox++) {
        uint32_t ix0, run;
        nn_valid_taps(ox, stride, padding, k, in_len, &kx0, &kx1);
        ix0 = ox * stride + kx0 - padding;
        run = (kx1 - kx0) * in_ch;
        for (o = 0; o < out_ch; o++) {
            uint32_t acc = nn_acc_init(bias[o], bias_shift, out_shift);
            acc = nn_dot(acc, in + ix0 * in_ch, wt + ((uint32_t)o * k + kx0) * in_ch, run);
            out[ox * out_ch + o] = nn_finish(acc, out_shift);
        }
    }
}

void nn_maxpool2d_q7(const nn_pool_params *p, const q7_t *in, q7_t *out)
{
    const uint16_t in_w = p->in.w, ch = p->in.c, k = p->k, stride = p->stride, out_h = p->out.h, out_w = p->out.w;
    uint32_t oy, ox, c, i, j;
    for (oy = 0; oy < out_h; oy++) {
        for (ox = 0; ox < out_w; ox++) {
            for (c = 0; c < ch; c++) {
                q7_t m = -128;
                for (i = 0; i < k; i++) {
                    for (j = 0; j < k; j++) {
                        q7_t v = in[((oy * stride + i) * in_w + (ox * stride + j)) * ch + c];
                        if (v > m) m = v;
                    }
                }
                out[(oy * out_w + ox) * ch + c] = m;
            }
        }
    }
}

void nn_relu_q7(q7_t *data, uint32_t size)
{
    uint32_t i;
    for (i = 0; i < size; i++)
        if (data[i] < 0) data[i] = 0;
}

void nn_fc_q7(const nn_fc_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out, q15_t *scratch)
{
    const uint16_t dim_vec = p->dim_vec, num_rows = p->num_rows, bias_shift = p->bias_shift, out_shift = p->out_shift;
    uint32_t o;
    (void)scratch;
    for (o = 0; o < num_rows; o++) {
        uint32_t acc = nn_acc_init(bias[o], bias_shift, out_shift);
        acc = nn_dot(acc, in, wt + (uint32_t)o * dim_vec, dim_vec);
        out[o] = nn_finish(acc, out_shift);
    }
}
