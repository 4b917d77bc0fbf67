/* Recurrent kernels: see nn_rnn_q7.h for the exact integer semantics (bit-exact with models/intref_rnn.py). */
#include "nn_rnn_q7.h"

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

static int32_t nn_ssat(int32_t v, uint8_t bits)
{
    int32_t lim = (int32_t)1 << (bits - 1);
    if (v > lim - 1) return lim - 1;
    if (v < -lim) return -lim;
    return v;
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

#if defined(__ARM_FEATURE_DSP) && !defined(NN_PORTABLE_KERNELS)
/* Cortex-M4 DSP: four terms per pass with two dual 16-bit multiply-accumulates (SMLAD adds modulo 2^32, the same
 * wrap-around as the portable loop below). int8 v: both words unpacked with SXTB16 into the pairs (0, 2) and
 * (1, 3); int16 v: the weight pairs are repacked to (0, 1) and (2, 3) to match v's halfwords. */
#include <arm_acle.h>
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

static uint32_t nn_dot_any(const void *v, uint8_t bits, const q7_t *w, uint32_t n)
{
    int32_t acc = 0;
    uint32_t k, n4 = n >> 2;
    if (bits == 16) {
        const int16_t *x = (const int16_t *)v;
        for (k = 0; k < n4; k++, x += 4, w += 4) {
            uint32_t ww = nn_ld32(w);
            uint32_t we = (uint32_t)__sxtb16((int32_t)ww), wo = (uint32_t)nn_sxtb16_odd(ww);
            acc = __smlad((int32_t)((we & 0xFFFFu) | (wo << 16)), (int32_t)nn_ld32(x), acc);
            acc = __smlad((int32_t)((wo & 0xFFFF0000u) | (we >> 16)), (int32_t)nn_ld32(x + 2), acc);
        }
        for (k = 0; k < (n & 3u); k++) acc = (int32_t)((uint32_t)acc + (uint32_t)((int32_t)x[k] * (int32_t)w[k]));
    } else {
        const int8_t *x = (const int8_t *)v;
        for (k = 0; k < n4; k++, x += 4, w += 4) {
            uint32_t xx = nn_ld32(x), ww = nn_ld32(w);
            acc = __smlad(__sxtb16((int32_t)xx), __sxtb16((int32_t)ww), acc);
            acc = __smlad(nn_sxtb16_odd(xx), nn_sxtb16_odd(ww), acc);
        }
        for (k = 0; k < (n & 3u); k++) acc = (int32_t)((uint32_t)acc + (uint32_t)((int32_t)x[k] * (int32_t)w[k]));
    }
    return (uint32_t)acc;
}
#else
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
#endif

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

void nn_lstm_q7(const void *in, uint8_t in_bits, uint16_t steps, uint16_t in_dim, uint16_t units,
                const q7_t *w_ih, const q7_t *w_hh, const q15_t *bias, int16_t shift_x, int16_t shift_h,
                uint16_t f_out, q15_t *cell, void *out, uint8_t out_bits)
{
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

void nn_gru_q7(const void *in, uint8_t in_bits, uint16_t steps, uint16_t in_dim, uint16_t units,
               const q7_t *w_ih, const q7_t *w_hh, const q15_t *bias, int16_t shift_x, int16_t shift_h,
               uint16_t f_out, void *out, uint8_t out_bits)
{
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
