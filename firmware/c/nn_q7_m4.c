/* int8 kernels on the Cortex-M4 DSP extension (ACLE intrinsics; built instead of nn_q7.c for cortex-m4 boards by
 * firmware/build.py). Same functions, same integer semantics as nn_q7.h / models/intref.py, bit for bit.
 *
 * Technique (after CMSIS-NN's legacy q7 kernels, our own code):
 * - conv2d / conv1d: each output pixel's input patch (k x k x in_ch q7, zero padding included) is expanded once to
 *   q15 in scratch and reused by every output channel; two pixels x two output channels per pass (2x2 register
 *   blocking: each weight word and each patch word loaded once feeds two dual multiply-accumulates). Weights stay
 *   in their generated layout: a weight word w0 w1 w2 w3 unpacks with SXTB16 to the pairs (w0, w2) and (w1, w3), so
 *   the patch is expanded in the same "reordered" pairs (x0, x2), (x1, x3) per group of 4; a K % 4 tail is zero-padded
 *   to a whole group. Patches of few input channels (in_ch % 4 != 0, e.g. RGB)
 *   are gathered as q7 into a staging area first, then expanded four bytes at a time.
 * - fc: the input vector expanded once, then two rows per pass.
 * - maxpool (channels % 4 == 0) and ReLU: four bytes per word with SSUB8 + SEL.
 * Sums wrap in 32 bits exactly like the portable uint32 accumulation (SMLAD adds modulo 2^32; its Q flag is
 * ignored); the rounding term is (1 << (out_shift - 1)) for every out_shift >= 1, the shift arithmetic, then SSAT 8.
 *
 * Scratch (models/kernels.py scratch_bytes): conv: two patches of K rounded up to 4 q15 values, plus K
 * rounded up to 4 bytes of staging when in_ch % 4 != 0 (K = kernel taps x in_ch); fc: dim_vec rounded up to 4 q15.
 * The last group of a patch is zero-padded and its weights read byte by byte (never past a weight row). A NULL scratch, or maxpool with channels % 4 != 0, runs the portable kernel (never silently wrong). */
#include <arm_acle.h>
#include <string.h>

#include "nn_q7.h"

#if !defined(__ARM_FEATURE_DSP)
#error "nn_q7_m4.c needs the DSP extension (-mcpu=cortex-m4); other targets build nn_q7.c"
#endif

/* the portable kernels under other names: the fallback (and their static helpers nn_acc_init, nn_valid_taps) */
#define nn_conv2d_q7 nn_conv2d_q7_portable
#define nn_conv2d_rows_q7 nn_conv2d_rows_q7_portable
#define nn_conv1d_q7 nn_conv1d_q7_portable
#define nn_maxpool2d_q7 nn_maxpool2d_q7_portable
#define nn_relu_q7 nn_relu_q7_portable
#define nn_fc_q7 nn_fc_q7_portable
void nn_conv2d_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                  q15_t *scratch);
void nn_conv2d_rows_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                       uint16_t oy0, uint16_t oy1, q15_t *scratch);
void nn_conv1d_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                  q15_t *scratch);
void nn_maxpool2d_q7(const nn_pool_params *p, const q7_t *in, q7_t *out);
void nn_relu_q7(q7_t *data, uint32_t size);
void nn_fc_q7(const nn_fc_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out, q15_t *scratch);
#include "nn_q7.c"
#undef nn_conv2d_q7
#undef nn_conv2d_rows_q7
#undef nn_conv1d_q7
#undef nn_maxpool2d_q7
#undef nn_relu_q7
#undef nn_fc_q7

/* word access at any alignment (the M4 allows unaligned LDR/STR; memcpy keeps the C defined and compiles to one
 * instruction) */
static inline uint32_t nn_ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void nn_st32(void *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

/* bytes 1 and 3 of w sign-extended to two halfwords (SXTB16 with ROR #8) */
static inline int32_t nn_sxtb16_odd(uint32_t w)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}

/* bytewise signed max of two words: SSUB8 sets GE where a >= b, SEL takes a there and b elsewhere (one asm block:
 * the GE flags must not be disturbed in between) */
static inline uint32_t nn_max4(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    return r;
}

/* 4 * groups q7 -> q15, each group x0 x1 x2 x3 stored as x0 x2 x1 x3 (the pairs SXTB16 gives for weights) */
static void nn_expand_reordered(const q7_t *src, q15_t *dst, uint32_t groups)
{
    while (groups--) {
        uint32_t w = nn_ld32(src);
        nn_st32(dst, (uint32_t)__sxtb16((int32_t)w));
        nn_st32(dst + 2, (uint32_t)nn_sxtb16_odd(w));
        src += 4;
        dst += 4;
    }
}

/* n (a multiple of 4) zero q15 values */
static void nn_zero_q15(q15_t *dst, uint32_t n)
{
    for (; n; n -= 4, dst += 4) {
        nn_st32(dst, 0u);
        nn_st32(dst + 2, 0u);
    }
}

/* n q7 -> NN_Q4(n) q15 in the layout above, the last group zero-padded (reordered like the others) */
#define NN_Q4(n) (((n) + 3u) & ~3u)
static void nn_expand_vector(const q7_t *src, q15_t *dst, uint32_t n)
{
    uint32_t r = n & 3u;
    nn_expand_reordered(src, dst, n >> 2);
    if (r) {
        dst += n & ~3u;
        src += n & ~3u;
        dst[0] = src[0];
        dst[1] = r > 2 ? src[2] : 0;
        dst[2] = r > 1 ? src[1] : 0;
        dst[3] = 0;
    }
}

/* the last r = 1..3 bytes of a weight row as a word, zeros above (byte loads: never past the row's end) */
static inline uint32_t nn_tail_word(const q7_t *w, uint32_t r)
{
    uint32_t v = (uint8_t)w[0];
    if (r > 1) v |= (uint32_t)(uint8_t)w[1] << 8;
    if (r > 2) v |= (uint32_t)(uint8_t)w[2] << 16;
    return v;
}

/* n bytes copied / zeroed a word at a time (inline: newlib-nano's memcpy and memset go byte by byte) */
static inline void nn_copy_q7(q7_t *dst, const q7_t *src, uint32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) nn_st32(dst, nn_ld32(src));
    while (n--) *dst++ = *src++;
}

static inline void nn_zero_q7(q7_t *dst, uint32_t n)
{
    for (; n >= 4; n -= 4, dst += 4) nn_st32(dst, 0u);
    while (n--) *dst++ = 0;
}

/* geometry of a convolution: kernel kh x kw over an in_h x in_w x in_ch image */
typedef struct {
    const q7_t *in;
    uint16_t in_h, in_w, in_ch, kh, kw, pad_h, pad_w, stride_h, stride_w;
} nn_geom;

/* the patch of output pixel (oy, ox): K = kh * kw * in_ch values in the layout of nn_expand_vector (zero padding
 * included), NN_Q4(K) q15; stage (NN_Q4(K) bytes) is used only when in_ch % 4 != 0 */
static void nn_patch(const nn_geom *g, uint32_t oy, uint32_t ox, q15_t *dst, q7_t *stage)
{
    uint32_t ky0, ky1, kx0, kx1, ky, c = g->in_ch;
    uint32_t row = (uint32_t)g->kw * c;
    int32_t ix0;
    const q7_t *src;
    nn_valid_taps(oy, g->stride_h, g->pad_h, g->kh, g->in_h, &ky0, &ky1);
    nn_valid_taps(ox, g->stride_w, g->pad_w, g->kw, g->in_w, &kx0, &kx1);
    ix0 = (int32_t)(ox * g->stride_w + kx0) - (int32_t)g->pad_w;
    src = g->in + ((int32_t)((oy * g->stride_h + ky0) - g->pad_h) * (int32_t)g->in_w + ix0) * (int32_t)c;
    if ((c & 3u) == 0) {  /* every kernel row and run is whole groups of 4: expand straight from the input */
        nn_zero_q15(dst, ky0 * row);
        dst += ky0 * row;
        for (ky = ky0; ky < ky1; ky++) {
            nn_zero_q15(dst, kx0 * c);
            nn_expand_reordered(src, dst + kx0 * c, ((kx1 - kx0) * c) >> 2);
            nn_zero_q15(dst + kx1 * c, (g->kw - kx1) * c);
            dst += row;
            src += (uint32_t)g->in_w * c;
        }
        nn_zero_q15(dst, (g->kh - ky1) * row);
        return;
    }
    {  /* few channels: gather the q7 patch, then expand it */
        q7_t *st = stage;
        nn_zero_q7(st, ky0 * row);
        st += ky0 * row;
        for (ky = ky0; ky < ky1; ky++) {
            nn_zero_q7(st, kx0 * c);
            nn_copy_q7(st + kx0 * c, src, (kx1 - kx0) * c);
            nn_zero_q7(st + kx1 * c, (g->kw - kx1) * c);
            st += row;
            src += (uint32_t)g->in_w * c;
        }
        nn_zero_q7(st, (g->kh - ky1) * row);
        nn_expand_vector(stage, dst, g->kh * row);  /* pads the last group with zeros */
    }
}

static inline int32_t nn_init(q7_t bias, uint16_t bias_shift, uint16_t out_shift)
{
    return (int32_t)nn_acc_init(bias, bias_shift, out_shift);
}

static inline q7_t nn_out(int32_t acc, uint16_t out_shift)
{
    return (q7_t)__ssat(acc >> out_shift, 8);
}

/* acc + w . p for one group: weight word x (bytes w0..w3), p the group's reordered q15 pairs */
static inline int32_t nn_mac4(int32_t acc, uint32_t x, const q15_t *p)
{
    acc = __smlad(__sxtb16((int32_t)x), (int32_t)nn_ld32(p), acc);
    return __smlad(nn_sxtb16_odd(x), (int32_t)nn_ld32(p + 2), acc);
}

/* acc + w . p: w a q7 row of K, p a q15 vector in the nn_expand_vector layout; 32-bit wrap-around */
static int32_t nn_dot_q15(int32_t acc, const q7_t *w, const q15_t *p, uint32_t K)
{
    uint32_t n = K >> 2;
    while (n--) {
        acc = nn_mac4(acc, nn_ld32(w), p);
        w += 4;
        p += 4;
    }
    if (K & 3u) acc = nn_mac4(acc, nn_tail_word(w, K & 3u), p);
    return acc;
}

/* one pixel (patch pa) x all out_ch channels, two channels per pass -> out[0..out_ch) */
static void nn_block1(const q15_t *pa, uint32_t K, const q7_t *wt, uint32_t out_ch, const q7_t *bias,
                      uint16_t bias_shift, uint16_t out_shift, q7_t *out)
{
    uint32_t o;
    for (o = 0; o + 2 <= out_ch; o += 2) {
        const q7_t *w0 = wt + o * K, *w1 = w0 + K;
        const q15_t *a = pa;
        int32_t a0 = nn_init(bias[o], bias_shift, out_shift), a1 = nn_init(bias[o + 1], bias_shift, out_shift);
        uint32_t n = K >> 2;
        while (n--) {
            uint32_t x0 = nn_ld32(w0), x1 = nn_ld32(w1);
            int32_t pe = (int32_t)nn_ld32(a), po = (int32_t)nn_ld32(a + 2);
            a0 = __smlad(__sxtb16((int32_t)x0), pe, a0);
            a0 = __smlad(nn_sxtb16_odd(x0), po, a0);
            a1 = __smlad(__sxtb16((int32_t)x1), pe, a1);
            a1 = __smlad(nn_sxtb16_odd(x1), po, a1);
            w0 += 4;
            w1 += 4;
            a += 4;
        }
        if (K & 3u) {
            a0 = nn_mac4(a0, nn_tail_word(w0, K & 3u), a);
            a1 = nn_mac4(a1, nn_tail_word(w1, K & 3u), a);
        }
        out[o] = nn_out(a0, out_shift);
        out[o + 1] = nn_out(a1, out_shift);
    }
    if (o < out_ch)
        out[o] = nn_out(nn_dot_q15(nn_init(bias[o], bias_shift, out_shift), wt + o * K, pa, K), out_shift);
}

/* two pixels (patches pa and pa + kp) x all out_ch channels, 2 x 2 per pass -> oa[0..out_ch), ob[0..out_ch).
 * Row o + 1 and the second patch are addressed by offsets from row o and the first patch: fewer live pointers, so
 * the four accumulators and the unpacked words fit the registers. */
static void nn_block2(const q15_t *pa, uint32_t kp, uint32_t K, const q7_t *wt, uint32_t out_ch,
                      const q7_t *bias, uint16_t bias_shift, uint16_t out_shift, q7_t *oa, q7_t *ob)
{
    uint32_t o;
    const q15_t *pb = pa + kp;
    for (o = 0; o + 2 <= out_ch; o += 2) {
        const q7_t *w = wt + o * K, *wend = w + (K & ~3u);
        const q15_t *a = pa;
        int32_t a0 = nn_init(bias[o], bias_shift, out_shift), a1 = nn_init(bias[o + 1], bias_shift, out_shift);
        int32_t b0 = a0, b1 = a1;
        if (w != wend) {
            /* per group: the words of rows o and o + 1 unpacked once (four SXTB16), each patch pair loaded once,
             * eight SMLAD; hand-scheduled (gcc spilled pointers), the loop end on the stack (14 registers in use) */
            const q15_t *b = a + kp;
            uint32_t x0, x1, t, u, pe, po;
            __asm__ volatile(
                "1:\n\t"
                "ldr %[x1], [%[w], %[K]]\n\t"
                "ldr %[x0], [%[w]], #4\n\t"
                "sxtb16 %[t], %[x0]\n\t"
                "sxtb16 %[x0], %[x0], ror #8\n\t"
                "sxtb16 %[u], %[x1]\n\t"
                "sxtb16 %[x1], %[x1], ror #8\n\t"
                "ldr %[pe], [%[a]], #4\n\t"
                "ldr %[po], [%[a]], #4\n\t"
                "smlad %[a0], %[t], %[pe], %[a0]\n\t"
                "smlad %[a0], %[x0], %[po], %[a0]\n\t"
                "smlad %[a1], %[u], %[pe], %[a1]\n\t"
                "smlad %[a1], %[x1], %[po], %[a1]\n\t"
                "ldr %[pe], [%[b]], #4\n\t"
                "ldr %[po], [%[b]], #4\n\t"
                "smlad %[b0], %[t], %[pe], %[b0]\n\t"
                "smlad %[b0], %[x0], %[po], %[b0]\n\t"
                "smlad %[b1], %[u], %[pe], %[b1]\n\t"
                "smlad %[b1], %[x1], %[po], %[b1]\n\t"
                "ldr %[pe], %[end]\n\t"
                "cmp %[w], %[pe]\n\t"
                "bne 1b"
                : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [w] "+r"(w), [a] "+r"(a), [b] "+r"(b),
                  [x0] "=&r"(x0), [x1] "=&r"(x1), [t] "=&r"(t), [u] "=&r"(u), [pe] "=&r"(pe), [po] "=&r"(po)
                : [K] "r"(K), [end] "m"(wend)
                : "cc", "memory");
        }
        if (K & 3u) {
            uint32_t x0 = nn_tail_word(w, K & 3u), x1 = nn_tail_word(w + K, K & 3u);
            a0 = nn_mac4(a0, x0, a);
            a1 = nn_mac4(a1, x1, a);
            b0 = nn_mac4(b0, x0, a + kp);
            b1 = nn_mac4(b1, x1, a + kp);
        }
        oa[o] = nn_out(a0, out_shift);
        oa[o + 1] = nn_out(a1, out_shift);
        ob[o] = nn_out(b0, out_shift);
        ob[o + 1] = nn_out(b1, out_shift);
    }
    if (o < out_ch) {
        int32_t init = nn_init(bias[o], bias_shift, out_shift);
        oa[o] = nn_out(nn_dot_q15(init, wt + o * K, pa, K), out_shift);
        ob[o] = nn_out(nn_dot_q15(init, wt + o * K, pb, K), out_shift);
    }
}

/* output pixels [oy0 * out_w, oy1 * out_w) of a convolution, two at a time -> out (row oy0 first) */
static void nn_conv_fast(const nn_geom *g, const q7_t *wt, uint32_t out_ch, const q7_t *bias,
                         uint16_t bias_shift, uint16_t out_shift, q7_t *out, uint32_t out_w, uint32_t oy0,
                         uint32_t oy1, q15_t *scratch)
{
    uint32_t K = (uint32_t)g->kh * g->kw * g->in_ch, kp = NN_Q4(K);
    q15_t *pa = scratch, *pb = scratch + kp;  /* nn_block2 reads the second patch at pa + kp */
    q7_t *stage = (q7_t *)(scratch + 2u * kp);
    uint32_t p = oy0 * out_w, end = oy1 * out_w;
    for (; p + 2 <= end; p += 2) {
        nn_patch(g, p / out_w, p % out_w, pa, stage);
        nn_patch(g, (p + 1) / out_w, (p + 1) % out_w, pb, stage);
        nn_block2(pa, kp, K, wt, out_ch, bias, bias_shift, out_shift, out, out + out_ch);
        out += 2u * out_ch;
    }
    if (p < end) {
        nn_patch(g, p / out_w, p % out_w, pa, stage);
        nn_block1(pa, K, wt, out_ch, bias, bias_shift, out_shift, out);
    }
}

void nn_conv2d_rows_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                       uint16_t oy0, uint16_t oy1, q15_t *scratch)
{
    nn_geom g = {in, p->in.h, p->in.w, p->in.c, p->k, p->k, p->padding, p->padding, p->stride, p->stride};
    if (!scratch) {
        nn_conv2d_rows_q7_portable(p, in, wt, bias, out, oy0, oy1, scratch);
        return;
    }
    nn_conv_fast(&g, wt, p->out.c, bias, p->bias_shift, p->out_shift, out, p->out.w, oy0, oy1, scratch);
}

void nn_conv2d_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                  q15_t *scratch)
{
    nn_conv2d_rows_q7(p, in, wt, bias, out, 0, p->out.h, scratch);
}

void nn_conv1d_q7(const nn_conv_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out,
                  q15_t *scratch)
{
    nn_geom g = {in, 1, p->in.w, p->in.c, 1, p->k, 0, p->padding, 1, p->stride};  /* 1 x in.w image, kernel 1 x k */
    if (!scratch) {
        nn_conv1d_q7_portable(p, in, wt, bias, out, scratch);
        return;
    }
    nn_conv_fast(&g, wt, p->out.c, bias, p->bias_shift, p->out_shift, out, p->out.w, 0, 1, scratch);
}

void nn_fc_q7(const nn_fc_params *p, const q7_t *in, const q7_t *wt, const q7_t *bias, q7_t *out, q15_t *scratch)
{
    if (!scratch) {
        nn_fc_q7_portable(p, in, wt, bias, out, scratch);
        return;
    }
    nn_expand_vector(in, scratch, p->dim_vec);
    nn_block1(scratch, p->dim_vec, wt, p->num_rows, bias, p->bias_shift, p->out_shift, out);
}

void nn_maxpool2d_q7(const nn_pool_params *p, const q7_t *in, q7_t *out)
{
    const uint32_t ch = p->in.c, k = p->k, stride = p->stride, out_h = p->out.h, out_w = p->out.w;
    uint32_t oy, ox, c, i, j, row = (uint32_t)p->in.w * ch;
    if (ch & 3u) {
        nn_maxpool2d_q7_portable(p, in, out);
        return;
    }
    for (oy = 0; oy < out_h; oy++) {
        for (ox = 0; ox < out_w; ox++) {
            const q7_t *win = in + oy * stride * row + ox * stride * ch;
            for (c = 0; c < ch; c += 4) {
                uint32_t m = nn_ld32(win + c);
                for (i = 0; i < k; i++)
                    for (j = 0; j < k; j++) m = nn_max4(m, nn_ld32(win + i * row + j * ch + c));
                nn_st32(out, m);
                out += 4;
            }
        }
    }
}

void nn_relu_q7(q7_t *data, uint32_t size)
{
    uint32_t i;
    for (i = 0; i + 4 <= size; i += 4) nn_st32(data + i, nn_max4(nn_ld32(data + i), 0u));
    for (; i < size; i++)
        if (data[i] < 0) data[i] = 0;
}
