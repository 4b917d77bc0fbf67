/* Recurrent kernels: see nn_rnn_q7.h for the exact integer semantics (bit-exact with models/intref_rnn.py). */
#include "nn_rnn_q7.h"

/* the Cortex-M4 DSP build (firmware/build.py: cortex-m4 with kernels="fast"); the host builds the portable code */
#if defined(__ARM_FEATURE_DSP) && !defined(NN_PORTABLE_KERNELS)
#define NN_DSP 1
#include <arm_acle.h>
#else
#define NN_DSP 0
#endif

/* round(f(k/32) * 2^15) for k = 0..256, clipped to 32767 (f = tanh, sigmoid); models/intref_rnn.py computes the same
 * values and tests/test_firmware_rnn_kernels.py checks both functions on all 65536 inputs. */
static const int16_t nn_tanh_lut[257] = {
    0, 1024, 2045, 3063, 4075, 5079, 6073, 7056, 8025, 8980, 9919, 10840, 11743, 12625, 13486, 14326,
    15143, 15936, 16706, 17452, 18173, 18870, 19542, 20189, 20813, 21411, 21986, 22538, 23066, 23571, 24054, 24516,
    24956, 25376, 25776, 26157, 26519, 26864, 27191, 27502, 27797, 28076, 28341, 28592, 28830, 29055, 29268, 29470,
    29660, 29840, 30010, 30170, 30322, 30465, 30600, 30727, 30847, 30960, 31067, 31167, 31262, 31351, 31435, 31515,
    31589, 31659, 31726, 31788, 31846, 31901, 31953, 32002, 32048, 32091, 32132, 32170, 32206, 32240, 32271, 32301,
    32329, 32356, 32381, 32404, 32426, 32447, 32466, 32484, 32501, 32517, 32532, 32547, 32560, 32573, 32584, 32596,
    32606, 32616, 32625, 32634, 32642, 32649, 32657, 32663, 32670, 32676, 32681, 32686, 32691, 32696, 32700, 32704,
    32708, 32712, 32715, 32718, 32721, 32724, 32727, 32729, 32732, 32734, 32736, 32738, 32740, 32741, 32743, 32745,
    32746, 32747, 32749, 32750, 32751, 32752, 32753, 32754, 32755, 32755, 32756, 32757, 32758, 32758, 32759, 32759,
    32760, 32760, 32761, 32761, 32762, 32762, 32762, 32763, 32763, 32763, 32764, 32764, 32764, 32764, 32765, 32765,
    32765, 32765, 32765, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767,
};

static const int16_t nn_sigmoid_lut[257] = {
    16384, 16640, 16896, 17151, 17407, 17661, 17916, 18169, 18421, 18673, 18923, 19173, 19420, 19667, 19912, 20155,
    20397, 20636, 20874, 21110, 21344, 21575, 21804, 22031, 22255, 22477, 22696, 22913, 23127, 23338, 23547, 23753,
    23955, 24155, 24352, 24546, 24737, 24925, 25110, 25292, 25471, 25646, 25819, 25988, 26155, 26318, 26479, 26636,
    26790, 26941, 27090, 27235, 27377, 27516, 27653, 27786, 27917, 28045, 28169, 28292, 28411, 28528, 28642, 28753,
    28862, 28968, 29072, 29173, 29272, 29368, 29462, 29554, 29644, 29731, 29816, 29899, 29979, 30058, 30135, 30210,
    30282, 30353, 30422, 30489, 30555, 30618, 30680, 30740, 30799, 30856, 30912, 30966, 31018, 31069, 31119, 31167,
    31214, 31260, 31304, 31347, 31389, 31430, 31469, 31508, 31545, 31581, 31616, 31651, 31684, 31716, 31747, 31778,
    31807, 31836, 31864, 31891, 31917, 31943, 31968, 31992, 32015, 32038, 32060, 32081, 32102, 32122, 32141, 32160,
    32179, 32196, 32214, 32231, 32247, 32263, 32278, 32293, 32307, 32321, 32335, 32348, 32361, 32373, 32385, 32397,
    32408, 32419, 32430, 32440, 32450, 32460, 32469, 32478, 32487, 32496, 32504, 32512, 32520, 32527, 32535, 32542,
    32549, 32555, 32562, 32568, 32574, 32580, 32586, 32592, 32597, 32602, 32607, 32612, 32617, 32622, 32626, 32630,
    32635, 32639, 32643, 32647, 32650, 32654, 32657, 32661, 32664, 32667, 32670, 32673, 32676, 32679, 32682, 32684,
    32687, 32689, 32692, 32694, 32696, 32699, 32701, 32703, 32705, 32707, 32709, 32711, 32712, 32714, 32716, 32717,
    32719, 32720, 32722, 32723, 32725, 32726, 32727, 32728, 32730, 32731, 32732, 32733, 32734, 32735, 32736, 32737,
    32738, 32739, 32740, 32741, 32742, 32742, 32743, 32744, 32745, 32745, 32746, 32747, 32747, 32748, 32749, 32749,
    32750, 32750, 32751, 32752, 32752, 32753, 32753, 32753, 32754, 32754, 32755, 32755, 32756, 32756, 32756, 32757,
    32757,
};

/* table value at a = |x| (0 <= a <= 32768, q3.12): entry a >> 7, 7 bits of linear interpolation */
static int32_t nn_lut(const int16_t *t, int32_t a)
{
    int32_t i = a >> 7;
    int32_t frac;
    if (i > 255) i = 255;
    frac = a - (i << 7);
    return t[i] + ((((int32_t)t[i + 1] - t[i]) * frac + 64) >> 7);
}

int32_t nn_tanh_q15(int16_t x)
{
    int32_t y = nn_lut(nn_tanh_lut, x < 0 ? -(int32_t)x : x);
    return x < 0 ? -y : y;
}

int32_t nn_sigmoid_q15(int16_t x)
{
    int32_t y = nn_lut(nn_sigmoid_lut, x < 0 ? -(int32_t)x : x);
    return x < 0 ? 32768 - y : y;
}

/* saturate to `bits` (8 or 16; a constant at every call) */
static inline int32_t nn_ssat(int32_t v, uint8_t bits)
{
#if NN_DSP
    return bits == 16 ? __ssat(v, 16) : __ssat(v, 8);  /* one SSAT */
#else
    int32_t lim = (int32_t)1 << (bits - 1);
    if (v > lim - 1) return lim - 1;
    if (v < -lim) return -lim;
    return v;
#endif
}

/* rounding shift in 32-bit two's complement (see the header) */
static uint32_t nn_rs(uint32_t v, int16_t s)
{
    if (s > 0) return (uint32_t)((int32_t)(v + ((uint32_t)1 << (s - 1))) >> s);
    if (s < 0) return v << -s;
    return v;
}

static int32_t nn_get(const void *p, uint8_t bits, uint32_t i)
{
    return bits == 16 ? ((const int16_t *)p)[i] : ((const int8_t *)p)[i];
}

static void nn_put(void *p, uint8_t bits, uint32_t i, int32_t v)
{
    if (bits == 16) ((int16_t *)p)[i] = (int16_t)nn_ssat(v, 16);
    else ((int8_t *)p)[i] = (int8_t)nn_ssat(v, 8);
}

#if NN_DSP
/* Cortex-M4 DSP: the gate rows of one unit (3 or 4 rows of the same weight matrix, `stride` bytes apart) are
 * multiplied together so each group of four vector elements is loaded and unpacked once for all of them; per row and
 * group one weight word, two SXTB16, two SMLAD (dual 16-bit multiply-accumulate, adding modulo 2^32 like the
 * portable uint32 loop). The vector's group v0 v1 v2 v3 is arranged as the pairs (v0, v2), (v1, v3) that SXTB16 gives
 * for the weight bytes: int8 with SXTB16 itself, int16 by packing halfwords (PKHBT / PKHTB). A last partial group
 * is zero-padded, its bytes read one by one (never past the vector or a row). */
#include <string.h>

static inline uint32_t nn_ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, 4);  /* any alignment: one LDR on the M4 */
    return v;
}

static inline int32_t nn_sxtb16_odd(uint32_t w)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}

/* the pairs (v0, v2) -> *e and (v1, v3) -> *o of the group at element k of v (r = 4: whole group; 1..3: tail) */
static inline void nn_vec_pairs(const void *v, uint8_t bits, uint32_t k, uint32_t r, int32_t *e, int32_t *o)
{
    if (r == 4) {
        if (bits == 16) {
            const int16_t *x = (const int16_t *)v + k;
            uint32_t lo = nn_ld32(x), hi = nn_ld32(x + 2);
            __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(*e) : "r"(lo), "r"(hi));
            __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(*o) : "r"(hi), "r"(lo));
        } else {
            uint32_t w = nn_ld32((const int8_t *)v + k);
            *e = __sxtb16((int32_t)w);
            *o = nn_sxtb16_odd(w);
        }
        return;
    }
    {
        int32_t t0 = nn_get(v, bits, k), t1 = r > 1 ? nn_get(v, bits, k + 1) : 0;
        int32_t t2 = r > 2 ? nn_get(v, bits, k + 2) : 0;
        *e = (int32_t)(((uint32_t)t0 & 0xFFFFu) | ((uint32_t)t2 << 16));
        *o = (int32_t)((uint32_t)t1 & 0xFFFFu);
    }
}

/* the bytes w[0..r) of a row as a word, zeros above (r = 4: one word load) */
static inline uint32_t nn_row_word(const q7_t *w, uint32_t r)
{
    uint32_t v;
    if (r == 4) return nn_ld32(w);
    v = (uint8_t)w[0];
    if (r > 1) v |= (uint32_t)(uint8_t)w[1] << 8;
    if (r > 2) v |= (uint32_t)(uint8_t)w[2] << 16;
    return v;
}

#define NN_MAC_ROW(acc, word) \
    do { uint32_t x_ = (word); \
         acc = __smlad(__sxtb16((int32_t)x_), e, acc); acc = __smlad(nn_sxtb16_odd(x_), o, acc); } while (0)

/* one group of four elements for the gate rows: load the vector's group into the pairs e = (v0, v2), o = (v1, v3),
 * then per row one weight word (row 0 last, post-incrementing w), two SXTB16 and two SMLAD; rows are s bytes apart
 * (row 2 at s << 1, row 3 at s3). Hand-scheduled: gcc spills the accumulators of the C version. */
#define NN_LOAD_X8 "ldr %[t], [%[x]], #4\n\tsxtb16 %[e], %[t]\n\tsxtb16 %[o], %[t], ror #8\n\t"
#define NN_LOAD_X16 "ldr %[t], [%[x]], #4\n\tldr %[u], [%[x]], #4\n\t" \
                    "pkhbt %[e], %[t], %[u], lsl #16\n\tpkhtb %[o], %[u], %[t], asr #16\n\t"
#define NN_ROW(addr, acc) "ldr %[t], " addr "\n\tsxtb16 %[u], %[t]\n\tsmlad %[" acc "], %[u], %[e], %[" acc "]\n\t" \
                          "sxtb16 %[t], %[t], ror #8\n\tsmlad %[" acc "], %[t], %[o], %[" acc "]\n\t"
#define NN_ROWS3 NN_ROW("[%[w], %[s]]", "a1") NN_ROW("[%[w], %[s], lsl #1]", "a2") NN_ROW("[%[w]], #4", "a0")
#define NN_ROWS4 NN_ROW("[%[w], %[s]]", "a1") NN_ROW("[%[w], %[s], lsl #1]", "a2") NN_ROW("[%[w], %[s3]]", "a3") \
                 NN_ROW("[%[w]], #4", "a0")
#define NN_GROUPS(LOAD, ROWS) \
    __asm__ volatile("1:\n\t" LOAD ROWS "cmp %[w], %[end]\n\tbne 1b" \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [x] "+r"(x), \
                       [t] "=&r"(t), [u] "=&r"(u), [e] "=&r"(e), [o] "=&r"(o) \
                     : [s] "r"(stride), [s3] "r"(s3), [end] "r"(end) : "cc", "memory")

/* the products of nn_gate_rows for constant bits and G (always inlined into the four specialisations below) */
static inline __attribute__((always_inline)) void nn_rows_t(const void *v, const uint8_t bits, const q7_t *w,
                                                            uint32_t stride, uint32_t n, const uint32_t G,
                                                            int16_t shift, uint32_t *out)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, e, o;
    uint32_t r, t, u, s3 = 3u * stride;
    const q7_t *end = w + (n & ~3u);
    const uint8_t *x = (const uint8_t *)v;
    if (w != end) {
        if (bits == 16 && G == 4) NN_GROUPS(NN_LOAD_X16, NN_ROWS4);
        else if (bits == 16) NN_GROUPS(NN_LOAD_X16, NN_ROWS3);
        else if (G == 4) NN_GROUPS(NN_LOAD_X8, NN_ROWS4);
        else NN_GROUPS(NN_LOAD_X8, NN_ROWS3);
    }
    r = n & 3u;
    if (r) {
        nn_vec_pairs(x, bits, 0, r, &e, &o);
        NN_MAC_ROW(a0, nn_row_word(w, r));
        NN_MAC_ROW(a1, nn_row_word(w + stride, r));
        NN_MAC_ROW(a2, nn_row_word(w + 2u * stride, r));
        if (G == 4) NN_MAC_ROW(a3, nn_row_word(w + s3, r));
    }
    out[0] = nn_rs((uint32_t)a0, shift);
    out[1] = nn_rs((uint32_t)a1, shift);
    out[2] = nn_rs((uint32_t)a2, shift);
    if (G == 4) out[3] = nn_rs((uint32_t)a3, shift);
}

static void nn_rows_8_4(const void *v, const q7_t *w, uint32_t stride, uint32_t n, int16_t shift, uint32_t *out)
{
    nn_rows_t(v, 8, w, stride, n, 4, shift, out);
}

static void nn_rows_16_4(const void *v, const q7_t *w, uint32_t stride, uint32_t n, int16_t shift, uint32_t *out)
{
    nn_rows_t(v, 16, w, stride, n, 4, shift, out);
}

static void nn_rows_8_3(const void *v, const q7_t *w, uint32_t stride, uint32_t n, int16_t shift, uint32_t *out)
{
    nn_rows_t(v, 8, w, stride, n, 3, shift, out);
}

static void nn_rows_16_3(const void *v, const q7_t *w, uint32_t stride, uint32_t n, int16_t shift, uint32_t *out)
{
    nn_rows_t(v, 16, w, stride, n, 3, shift, out);
}

/* out[g] = rs(v . w[g * stride ..], shift) for g < G (3 or 4): the gate rows of one unit */
static void nn_gate_rows(const void *v, uint8_t bits, const q7_t *w, uint32_t stride, uint32_t n, uint32_t G,
                         int16_t shift, uint32_t *out)
{
    if (G == 4) (bits == 16 ? nn_rows_16_4 : nn_rows_8_4)(v, w, stride, n, shift, out);
    else (bits == 16 ? nn_rows_16_3 : nn_rows_8_3)(v, w, stride, n, shift, out);
}
/* the three gate rows of two neighbouring units j, j + 1 (rows w + {0, s, 2s} and w2 = w + n + {0, s, 2s}): six
 * rows per vector group, so the vector is loaded and unpacked once per 24 MACs (GRU; the LSTM's eight rows would
 * not fit the registers). The loop end lives on the stack: 14 registers hold everything else. */
#define NN_ROWS6 NN_ROW("[%[w], %[s]]", "a1") NN_ROW("[%[w], %[s], lsl #1]", "a2") NN_ROW("[%[w]], #4", "a0") \
                 NN_ROW("[%[w2], %[s]]", "b1") NN_ROW("[%[w2], %[s], lsl #1]", "b2") NN_ROW("[%[w2]], #4", "b0")
#define NN_GROUPS6(LOAD) \
    __asm__ volatile("1:\n\t" LOAD NN_ROWS6 "ldr %[t], %[end]\n\tcmp %[w], %[t]\n\tbne 1b" \
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [b0] "+r"(b0), [b1] "+r"(b1), [b2] "+r"(b2), \
                       [w] "+r"(w), [w2] "+r"(w2), [x] "+r"(x), \
                       [t] "=&r"(t), [u] "=&r"(u), [e] "=&r"(e), [o] "=&r"(o) \
                     : [s] "r"(stride), [end] "m"(end) : "cc", "memory")

static inline __attribute__((always_inline)) void nn_rows6_t(const void *v, const uint8_t bits, const q7_t *w,
                                                             uint32_t stride, uint32_t n, int16_t shift,
                                                             uint32_t *out)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, b0 = 0, b1 = 0, b2 = 0, e, o;
    uint32_t r, t, u;
    const q7_t *w2 = w + n, *end = w + (n & ~3u);
    const uint8_t *x = (const uint8_t *)v;
    if (w != end) {
        if (bits == 16) NN_GROUPS6(NN_LOAD_X16);
        else NN_GROUPS6(NN_LOAD_X8);
    }
    r = n & 3u;
    if (r) {
        nn_vec_pairs(x, bits, 0, r, &e, &o);
        NN_MAC_ROW(a0, nn_row_word(w, r));
        NN_MAC_ROW(a1, nn_row_word(w + stride, r));
        NN_MAC_ROW(a2, nn_row_word(w + 2u * stride, r));
        NN_MAC_ROW(b0, nn_row_word(w2, r));
        NN_MAC_ROW(b1, nn_row_word(w2 + stride, r));
        NN_MAC_ROW(b2, nn_row_word(w2 + 2u * stride, r));
    }
    out[0] = nn_rs((uint32_t)a0, shift);
    out[1] = nn_rs((uint32_t)a1, shift);
    out[2] = nn_rs((uint32_t)a2, shift);
    out[3] = nn_rs((uint32_t)b0, shift);
    out[4] = nn_rs((uint32_t)b1, shift);
    out[5] = nn_rs((uint32_t)b2, shift);
}

static void nn_rows6_8(const void *v, const q7_t *w, uint32_t stride, uint32_t n, int16_t shift, uint32_t *out)
{
    nn_rows6_t(v, 8, w, stride, n, shift, out);
}

static void nn_rows6_16(const void *v, const q7_t *w, uint32_t stride, uint32_t n, int16_t shift, uint32_t *out)
{
    nn_rows6_t(v, 16, w, stride, n, shift, out);
}

/* out[3u + g] = rs(v . row g of unit j + u, shift) for the nu (1 or 2) units from j: w is unit j's gate-0 row */
static void nn_gate_units(const void *v, uint8_t bits, const q7_t *w, uint32_t stride, uint32_t n, uint32_t nu,
                          int16_t shift, uint32_t *out)
{
    if (nu == 2) (bits == 16 ? nn_rows6_16 : nn_rows6_8)(v, w, stride, n, shift, out);
    else nn_gate_rows(v, bits, w, stride, n, 3, shift, out);
}

static int16_t nn_pre(uint32_t sum)
{
    return (int16_t)nn_ssat((int32_t)sum, 16);
}

void nn_lstm_q7(const nn_rnn_params *p, const void *in, const q7_t *w_ih, const q7_t *w_hh, const q15_t *bias,
                q15_t *cell, void *out)
{
    const uint8_t in_bits = p->in_bits, out_bits = p->out_bits;
    const uint16_t steps = p->steps, in_dim = p->in_dim, units = p->units, f_out = p->f_out;
    const int16_t shift_x = p->shift_x, shift_h = p->shift_h;
    uint32_t t, j, g;
    uint32_t esz_in = in_bits / 8u, esz_out = out_bits / 8u;
    for (j = 0; j < units; j++) cell[j] = 0;
    for (t = 0; t < steps; t++) {
        const void *x = (const int8_t *)in + (uint32_t)t * in_dim * esz_in;
        const void *h = t ? (const int8_t *)out + (t - 1u) * units * esz_out : 0;
        void *ht = (int8_t *)out + (uint32_t)t * units * esz_out;
        for (j = 0; j < units; j++) {
            int32_t act[4], c, hv;
            uint32_t gx[4], gh[4] = {0u, 0u, 0u, 0u};  /* h(-1) = 0 contributes 0 */
            nn_gate_rows(x, in_bits, w_ih + j * in_dim, (uint32_t)units * in_dim, in_dim, 4, shift_x, gx);
            if (h) nn_gate_rows(h, out_bits, w_hh + j * units, (uint32_t)units * units, units, 4, shift_h, gh);
            for (g = 0; g < 4; g++) {
                int16_t pre = nn_pre(gx[g] + gh[g] + (uint32_t)(int32_t)bias[g * units + j]);
                act[g] = g == 2 ? nn_tanh_q15(pre) : nn_sigmoid_q15(pre);
            }
            /* |f*c|, |i*g| <= 2^30: no overflow */
            c = (act[1] * (int32_t)cell[j] + ((act[0] * act[2] + 8) >> 4) + (1 << 14)) >> 15;
            cell[j] = (q15_t)nn_ssat(c, 16);
            hv = (int32_t)nn_rs((uint32_t)(act[3] * nn_tanh_q15((int16_t)nn_ssat(2 * (int32_t)cell[j], 16))),
                                (int16_t)(30 - f_out));
            nn_put(ht, out_bits, j, hv);
        }
    }
}

void nn_gru_q7(const nn_rnn_params *p, const void *in, const q7_t *w_ih, const q7_t *w_hh, const q15_t *bias,
               void *out)
{
    const uint8_t in_bits = p->in_bits, out_bits = p->out_bits;
    const uint16_t steps = p->steps, in_dim = p->in_dim, units = p->units, f_out = p->f_out;
    const int16_t shift_x = p->shift_x, shift_h = p->shift_h;
    uint32_t t, j;
    uint32_t esz_in = in_bits / 8u, esz_out = out_bits / 8u;
    const q15_t *b_i = bias, *b_h = bias + 3u * units;
    for (t = 0; t < steps; t++) {
        const void *x = (const int8_t *)in + (uint32_t)t * in_dim * esz_in;
        const void *h = t ? (const int8_t *)out + (t - 1u) * units * esz_out : 0;
        void *ht = (int8_t *)out + (uint32_t)t * units * esz_out;
        uint32_t gx2[6], gh2[6] = {0u, 0u, 0u, 0u, 0u, 0u};  /* h(-1) = 0 contributes 0 */
        for (j = 0; j < units; j++) {
            uint32_t rr = j, rz = units + j, rn = 2u * units + j;
            const uint32_t *gx = gx2 + 3u * (j & 1u), *gh = gh2 + 3u * (j & 1u);
            int32_t r, z, hn, n, hprev, mix;
            if (!(j & 1u)) {  /* units j and j + 1 together (their six rows at once) */
                uint32_t nu = j + 1u < units ? 2u : 1u;
                nn_gate_units(x, in_bits, w_ih + j * in_dim, (uint32_t)units * in_dim, in_dim, nu, shift_x, gx2);
                if (h) nn_gate_units(h, out_bits, w_hh + j * units, (uint32_t)units * units, units, nu, shift_h, gh2);
            }
            r = nn_sigmoid_q15(nn_pre(gx[0] + gh[0] + (uint32_t)(int32_t)b_i[rr] + (uint32_t)(int32_t)b_h[rr]));
            z = nn_sigmoid_q15(nn_pre(gx[1] + gh[1] + (uint32_t)(int32_t)b_i[rz] + (uint32_t)(int32_t)b_h[rz]));
            hn = nn_pre(gh[2] + (uint32_t)(int32_t)b_h[rn]);
            n = nn_tanh_q15(nn_pre(gx[2] + (uint32_t)(int32_t)b_i[rn] + (uint32_t)((r * hn + (1 << 14)) >> 15)));
            hprev = h ? nn_get(h, out_bits, j) : 0;
            /* |h << (15 - f_out)| <= 2^15 for outputs of this kernel, so |mix| <= 2^30 (docs/fixed-point-rnn.md) */
            mix = (32768 - z) * n + z * (int32_t)((uint32_t)hprev << (15 - f_out));
            nn_put(ht, out_bits, j, (int32_t)nn_rs((uint32_t)mix, (int16_t)(30 - f_out)));
        }
    }
}

#else
/* The portable kernels: the host's code and the readable reference (one dot product per gate row). */

/* sum_k v[k] * w[k] in uint32 wrap-around; v int8 or int16 */
static uint32_t nn_dot_any(const void *v, uint8_t bits, const q7_t *w, uint32_t n)
{
    uint32_t acc = 0, k;
    if (bits == 16) {
        const int16_t *x = (const int16_t *)v;
        for (k = 0; k < n; k++) acc += (uint32_t)((int32_t)x[k] * (int32_t)w[k]);
    } else {
        const int8_t *x = (const int8_t *)v;
        for (k = 0; k < n; k++) acc += (uint32_t)((int32_t)x[k] * (int32_t)w[k]);
    }
    return acc;
}

/* rs(x . w_ih[row], shift_x): the input part of a gate row at step t */
static uint32_t nn_gate_x(const void *x, uint8_t in_bits, const q7_t *w_ih, uint32_t row, uint16_t in_dim,
                          int16_t shift_x)
{
    return nn_rs(nn_dot_any(x, in_bits, w_ih + row * in_dim, in_dim), shift_x);
}

/* rs(h . w_hh[row], shift_h); h == 0 (first step) contributes 0 */
static uint32_t nn_gate_h(const void *h, uint8_t out_bits, const q7_t *w_hh, uint32_t row, uint16_t units,
                          int16_t shift_h)
{
    return h ? nn_rs(nn_dot_any(h, out_bits, w_hh + row * units, units), shift_h) : 0u;
}

static int16_t nn_pre(uint32_t sum)
{
    return (int16_t)nn_ssat((int32_t)sum, 16);
}

void nn_lstm_q7(const nn_rnn_params *p, const void *in, const q7_t *w_ih, const q7_t *w_hh, const q15_t *bias,
                q15_t *cell, void *out)
{
    const uint8_t in_bits = p->in_bits, out_bits = p->out_bits;
    const uint16_t steps = p->steps, in_dim = p->in_dim, units = p->units, f_out = p->f_out;
    const int16_t shift_x = p->shift_x, shift_h = p->shift_h;
    uint32_t t, j, g;
    uint32_t esz_in = in_bits / 8u, esz_out = out_bits / 8u;
    for (j = 0; j < units; j++) cell[j] = 0;
    for (t = 0; t < steps; t++) {
        const void *x = (const int8_t *)in + (uint32_t)t * in_dim * esz_in;
        const void *h = t ? (const int8_t *)out + (t - 1u) * units * esz_out : 0;
        void *ht = (int8_t *)out + (uint32_t)t * units * esz_out;
        for (j = 0; j < units; j++) {
            int32_t act[4], c, hv;
            for (g = 0; g < 4; g++) {
                uint32_t row = g * units + j;
                int16_t pre = nn_pre(nn_gate_x(x, in_bits, w_ih, row, in_dim, shift_x)
                                     + nn_gate_h(h, out_bits, w_hh, row, units, shift_h)
                                     + (uint32_t)(int32_t)bias[row]);
                act[g] = g == 2 ? nn_tanh_q15(pre) : nn_sigmoid_q15(pre);
            }
            /* |f*c|, |i*g| <= 2^30: no overflow */
            c = (act[1] * (int32_t)cell[j] + ((act[0] * act[2] + 8) >> 4) + (1 << 14)) >> 15;
            cell[j] = (q15_t)nn_ssat(c, 16);
            hv = (int32_t)nn_rs((uint32_t)(act[3] * nn_tanh_q15((int16_t)nn_ssat(2 * (int32_t)cell[j], 16))),
                                (int16_t)(30 - f_out));
            nn_put(ht, out_bits, j, hv);
        }
    }
}

void nn_gru_q7(const nn_rnn_params *p, const void *in, const q7_t *w_ih, const q7_t *w_hh, const q15_t *bias,
               void *out)
{
    const uint8_t in_bits = p->in_bits, out_bits = p->out_bits;
    const uint16_t steps = p->steps, in_dim = p->in_dim, units = p->units, f_out = p->f_out;
    const int16_t shift_x = p->shift_x, shift_h = p->shift_h;
    uint32_t t, j;
    uint32_t esz_in = in_bits / 8u, esz_out = out_bits / 8u;
    const q15_t *b_i = bias, *b_h = bias + 3u * units;
    for (t = 0; t < steps; t++) {
        const void *x = (const int8_t *)in + (uint32_t)t * in_dim * esz_in;
        const void *h = t ? (const int8_t *)out + (t - 1u) * units * esz_out : 0;
        void *ht = (int8_t *)out + (uint32_t)t * units * esz_out;
        for (j = 0; j < units; j++) {
            uint32_t rr = j, rz = units + j, rn = 2u * units + j;
            int32_t r = nn_sigmoid_q15(nn_pre(nn_gate_x(x, in_bits, w_ih, rr, in_dim, shift_x)
                                              + nn_gate_h(h, out_bits, w_hh, rr, units, shift_h)
                                              + (uint32_t)(int32_t)b_i[rr] + (uint32_t)(int32_t)b_h[rr]));
            int32_t z = nn_sigmoid_q15(nn_pre(nn_gate_x(x, in_bits, w_ih, rz, in_dim, shift_x)
                                              + nn_gate_h(h, out_bits, w_hh, rz, units, shift_h)
                                              + (uint32_t)(int32_t)b_i[rz] + (uint32_t)(int32_t)b_h[rz]));
            int32_t hn = nn_pre(nn_gate_h(h, out_bits, w_hh, rn, units, shift_h) + (uint32_t)(int32_t)b_h[rn]);
            int32_t n = nn_tanh_q15(nn_pre(nn_gate_x(x, in_bits, w_ih, rn, in_dim, shift_x)
                                           + (uint32_t)(int32_t)b_i[rn] + (uint32_t)((r * hn + (1 << 14)) >> 15)));
            int32_t hprev = h ? nn_get(h, out_bits, j) : 0;
            /* |h << (15 - f_out)| <= 2^15 for outputs of this kernel, so |mix| <= 2^30 (docs/fixed-point-rnn.md) */
            int32_t mix = (32768 - z) * n + z * (int32_t)((uint32_t)hprev << (15 - f_out));
            nn_put(ht, out_bits, j, (int32_t)nn_rs((uint32_t)mix, (int16_t)(30 - f_out)));
        }
    }
}
#endif
