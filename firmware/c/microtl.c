/* The MicroTL trainer (see microtl.h; reference: models/head.py, models/prng.py). */
#include <math.h>
#include <string.h>

#include "dse_model.h"
#include "microtl.h"

/* ---- prng ------------------------------------------------------------------------------------------------- */

uint32_t mt_mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static uint32_t mt_base(uint32_t seed, uint32_t stream)
{
    return mt_mix32(mt_mix32(seed) ^ stream);
}

uint32_t mt_rand_u32(uint32_t seed, uint32_t stream, uint32_t index)
{
    return mt_mix32(mt_base(seed, stream) + index);
}

float mt_uniform01(uint32_t seed, uint32_t stream, uint32_t index)
{
    return (float)(mt_rand_u32(seed, stream, index) >> 8) * 0x1p-24f;
}

void mt_init_uniform(uint32_t seed, uint32_t layer, uint32_t fan_out, uint32_t fan_in, float *w)
{
    uint32_t base = mt_base(seed, MT_INIT_STREAM + layer), i;
    float bound = 1.0f / sqrtf((float)fan_in);
    for (i = 0; i < fan_out * fan_in; i++) {
        float u = (float)(mt_mix32(base + i) >> 8) * 0x1p-24f;
        w[i] = (2.0f * u - 1.0f) * bound;
    }
}

/* (key(a), a) > (key(b), b) */
static int mt_after(uint32_t base, uint16_t a, uint16_t b)
{
    uint32_t ka = mt_mix32(base + a), kb = mt_mix32(base + b);
    return ka > kb || (ka == kb && a > b);
}

static void mt_sift_down(uint32_t base, uint16_t *v, uint32_t root, uint32_t n)
{
    for (;;) {
        uint32_t child = 2 * root + 1;
        uint16_t t;
        if (child >= n) return;
        if (child + 1 < n && mt_after(base, v[child + 1], v[child])) child++;
        if (!mt_after(base, v[child], v[root])) return;
        t = v[root];
        v[root] = v[child];
        v[child] = t;
        root = child;
    }
}

void mt_shuffle(uint32_t seed, uint32_t epoch, uint32_t n, uint16_t *order)
{
    /* keys are recomputed in the comparisons (one mix32 each) instead of being stored: 4 bytes less RAM per sample */
    uint32_t base = mt_base(seed, MT_SHUFFLE_STREAM + epoch), i;
    for (i = 0; i < n; i++) order[i] = (uint16_t)i;
    for (i = n / 2; i-- > 0;) mt_sift_down(base, order, i, n);
    for (i = n; i-- > 1;) {
        uint16_t t = order[0];
        order[0] = order[i];
        order[i] = t;
        mt_sift_down(base, order, 0, i);
    }
}

uint32_t mt_fnv1a(uint32_t h, const void *data, uint32_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    uint32_t i;
    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* ---- expf / logf --------------------------------------------------------------------------------------------
 * Own float32 exp and log, built from + - * / and integer bit operations only, so the host and the Cortex-M4 give
 * bit-identical results (glibc's and newlib's expf/logf differ in the last bit, and such differences grow over the
 * epochs of SGD). Textbook methods: Cody-Waite argument reduction with Taylor polynomials; within 1 ulp of the
 * correctly rounded value (tested). */

typedef union {
    float f;
    uint32_t i;
} mt_bits;

/* ln 2 = MT_LN2_HI + MT_LN2_LO; MT_LN2_HI has its low 10 mantissa bits zero, so k * MT_LN2_HI is exact for the
 * |k| <= 150 that occur here. */
#define MT_LN2_HI 0x1.62e400p-1f
#define MT_LN2_LO 0x1.7f7d1cp-20f

/* 2^n for -126 <= n <= 127, from the exponent bits. */
static float mt_pow2i(int n)
{
    mt_bits u;
    u.i = (uint32_t)(127 + n) << 23;
    return u.f;
}

float mt_expf(float x)
{
    /* e^x = 2^k e^r with x = k ln2 + r, |r| <= ln2 / 2; e^r - 1 by its Taylor series to r^7 (remainder < 2^-30),
     * added to 1 last so that the result is rounded once. Below -103.97 the result is 0: it is computed on the
     * clamped argument and then selected instead of returned early, so that a call retires the same instructions
     * whatever its (finite, <= 88.7) argument: softmax of confident logits took the early exit data-dependently
     * (up to 2.5% of the training instructions of a small head), which no cost model can know (issue 4). */
    float t, r, p, xc;
    int k, under;
    if (x != x) return x;
    if (x > 88.72284f) return INFINITY;
    under = x < -103.97208f;
    xc = under ? -103.97208f : x;
#if defined(__arm__)
    __asm__("" : "+t"(xc));  /* opaque to the optimiser: no code path specialised on the clamped constant */
#endif
    t = xc * 0x1.715476p+0f;  /* x / ln2 */
    k = (int)(t < 0.0f ? t - 0.5f : t + 0.5f);
    r = (xc - (float)k * MT_LN2_HI) - (float)k * MT_LN2_LO;
    p = r * (1.0f / 5040.0f) + (1.0f / 720.0f);
    p = p * r + (1.0f / 120.0f);
    p = p * r + (1.0f / 24.0f);
    p = p * r + (1.0f / 6.0f);
    p = p * r + 0.5f;
    p = r + (r * r) * p;
    t = 1.0f + p;
    if (k > 127)
        t = t * mt_pow2i(127) * mt_pow2i(k - 127);
    else if (k < -126)
        t = t * mt_pow2i(-126) * mt_pow2i(k + 126);  /* subnormal results */
    else
        t = t * mt_pow2i(k);
    return under ? 0.0f : t;
}

float mt_logf(float x)
{
    /* x = m 2^e with m in [sqrt(1/2), sqrt(2)); f = m - 1, s = f / (2 + f): log m = 2 atanh(s)
     * = f - f^2/2 + s (f^2/2 + R) with R = 2/3 s^2 + 2/5 s^4 + ... (Taylor to s^10; |s| < 0.172). */
    mt_bits u;
    float f, s, z, R, hfsq, dk;
    int e = 0;
    if (x != x || x == INFINITY) return x;
    if (x < 0.0f) return NAN;
    if (x == 0.0f) return -INFINITY;
    u.f = x;
    if (u.i < 0x00800000u) {  /* subnormal: scale into the normal range */
        u.f = x * 0x1p25f;
        e = -25;
    }
    e += (int)(u.i >> 23) - 127;
    u.i = (u.i & 0x007fffffu) | 0x3f800000u;  /* m in [1, 2) */
    if (u.f > 1.41421356f) {
        u.f *= 0.5f;
        e += 1;
    }
    f = u.f - 1.0f;
    s = f / (2.0f + f);
    z = s * s;
    R = z * (2.0f / 3.0f + z * (2.0f / 5.0f + z * (2.0f / 7.0f + z * (2.0f / 9.0f + z * (2.0f / 11.0f)))));
    hfsq = 0.5f * f * f;
    dk = (float)e;
    return dk * MT_LN2_HI + ((s * (hfsq + R) + dk * MT_LN2_LO) - hfsq + f);
}

/* ---- sample store ----------------------------------------------------------------------------------------- */

#if !DSE_STREAMING
static mt_feature_t mt_store[DSE_N_SAMPLES][DSE_FEATURE];

mt_feature_t *mt_store_row(uint32_t i) { return mt_store[i]; }
uint32_t mt_store_bytes(void) { return (uint32_t)sizeof(mt_store); }
#endif

/* ---- head ------------------------------------------------------------------------------------------------- */

#define F DSE_FEATURE
#define C DSE_CLASSES
#define H DSE_HIDDEN
#define B DSE_BATCH

/* offsets into the flat parameter vector: layer 1 W [MT_L1_OUT][F], b [MT_L1_OUT]; layer 2 (hidden) W [C][H], b [C] */
#define MT_W1 0
#define MT_B1 (MT_L1_OUT * F)
#define MT_W2 (MT_B1 + MT_L1_OUT)
#define MT_B2 (MT_W2 + C * H)

/* offsets (float32 slots) into the work region, in this order */
#define MT_WORK_UPDATE 0
#define MT_WORK_BEST (MT_UPDATE_BUFFER ? MT_PARAMS : 0)
#define MT_WORK_H (MT_WORK_BEST + (MT_BEST_COPY ? MT_PARAMS : 0))
#define MT_WORK_D (MT_WORK_H + H)
#define MT_WORK_Z (MT_WORK_D + H)

#if H > 0
#define MT_HIDDEN(p) (p)
#else
#define MT_HIDDEN(p) ((float *)0)
#endif

static float mt_params[MT_PARAMS];
#if H > 0
static float mt_pred_h[H];  /* mt_predict's hidden activations (evaluation: the work region is gone) */
#endif
static float mt_pred_z[C];  /* mt_predict's logits */

/* y[o] = (sum_k w[o][k] * (float)q[k]) * 2^-f + b[o]: layer 1 on a stored feature, dequantized on the fly (sums in
 * order k = 0.., scaled, bias last). Scaling the sum by a power of two instead of each input is exact (short of
 * overflow or subnormal products, which the replay follows too). */
static void mt_dense_q(const float *w, const float *b, const mt_feature_t *q, uint32_t n_out, float *y)
{
    uint32_t o, k;
    for (o = 0; o < n_out; o++) {
        const float *wo = w + o * F;
        float acc = 0.0f;
        for (k = 0; k < F; k++) acc += wo[k] * (float)q[k];
        y[o] = acc * DSE_FEATURE_SCALE + b[o];
    }
}

#if H > 0
/* y[o] = sum_k w[o][k] * x[k] + b[o] (sums in order k = 0.., bias last) */
static void mt_dense(const float *w, const float *b, const float *x, uint32_t n_in, uint32_t n_out, float *y)
{
    uint32_t o, k;
    for (o = 0; o < n_out; o++) {
        const float *wo = w + o * n_in;
        float acc = 0.0f;
        for (k = 0; k < n_in; k++) acc += wo[k] * x[k];
        y[o] = acc + b[o];
    }
}
#endif

/* logits z[C] of one stored feature q (hidden activations after ReLU into h when H > 0) */
static void mt_forward(const float *p, const mt_feature_t *q, float *h, float *z)
{
#if H > 0
    uint32_t j;
    mt_dense_q(p + MT_W1, p + MT_B1, q, H, h);
    for (j = 0; j < H; j++)
        if (h[j] < 0.0f) h[j] = 0.0f;  /* ReLU (np.maximum(h, 0)) */
    mt_dense(p + MT_W2, p + MT_B2, h, H, C, z);
#else
    (void)h;
    mt_dense_q(p + MT_W1, p + MT_B1, q, C, z);
#endif
}

/* d(loss / nb) / d(logits) of one sample in place of its logits z: (softmax(z) - onehot(label)) / nb */
static void mt_logit_grad(float *z, uint32_t label, float nbf)
{
    uint32_t c;
    float m = z[0], s = 0.0f;
    for (c = 1; c < C; c++)
        if (z[c] > m) m = z[c];
    for (c = 0; c < C; c++) {
        z[c] = mt_expf(z[c] - m);
        s += z[c];
    }
    for (c = 0; c < C; c++) {
        z[c] = z[c] / s;  /* softmax */
        if (c == label) z[c] = z[c] - 1.0f;
        z[c] = z[c] / nbf;
    }
}

#if MT_UPDATE_BUFFER
/* one row of the update buffer: u[k] += g * x[k] (layer 1: x the stored feature, g the row's delta times 2^-f) */
#define MT_ACC_Q(u, g, q) do { for (k = 0; k < F; k++) (u)[k] += (g) * (float)(q)[k]; } while (0)
#define MT_ACC_F(u, g, x, n) do { for (k = 0; k < (n); k++) (u)[k] += (g) * (x)[k]; } while (0)
#else
/* no buffer: w[k] -= lr * (g * x[k] + decay * w[k]) (torch.optim.SGD without momentum) */
#define MT_SGD1(w, g) ((w) - DSE_LR * ((g) + DSE_DECAY * (w)))
#define MT_ACC_Q(w, g, q) do { for (k = 0; k < F; k++) (w)[k] = MT_SGD1((w)[k], (g) * (float)(q)[k]); } while (0)
#define MT_ACC_F(w, g, x, n) do { for (k = 0; k < (n); k++) (w)[k] = MT_SGD1((w)[k], (g) * (x)[k]); } while (0)
#endif

/* one SGD step on the samples order[0..nb) of the store: each sample forward and backward on its own, its gradient
 * added to the update buffer u (or, without one, applied to the weights at once: nb is 1 there).
 * Kept out of line and unspecialised (noinline, noclone), with nb and the work pointers opaque, so that it is
 * compiled once whatever the sample count and batch size: GCC specialised it on DSE_N_TRAIN and on the batch
 * arrays' bounds (instructions per sample varied by up to 30% with N or B alone, which no cost model over the
 * configuration can follow: issue 4). Changes no float operation or its order. */
#if DSE_STREAMING
/* streaming: one step of batch 1 on one feature (the current sample's, or a ring entry's) */
__attribute__((noinline, noclone)) static void mt_step(const mt_feature_t *row, uint32_t label, float *work)
#else
__attribute__((noinline, noclone)) static void mt_step(const uint16_t *order, uint32_t nb, const uint8_t *labels,
                                                       float *work)
#endif
{
#if DSE_STREAMING
    const uint32_t nb = 1;
#endif
    uint32_t b, c, k;
    float nbf = (float)nb, *z = work + MT_WORK_Z;
#if MT_UPDATE_BUFFER
    float *u = work + MT_WORK_UPDATE;
#else
    float *u = mt_params;  /* updated in place */
#endif
#if H > 0
    uint32_t j;
    float *h = work + MT_WORK_H, *d = work + MT_WORK_D;
    __asm__("" : "+r"(h), "+r"(d));
#endif
    __asm__("" : "+r"(z), "+r"(u));
#if MT_UPDATE_BUFFER
    /* u = momentum * u + decay * w: the rest of torch's g = grad + decay * w, v = momentum * v + g, added before
     * the batch's gradients (w does not change within the batch) */
    for (k = 0; k < MT_PARAMS; k++) u[k] = DSE_MOMENTUM * u[k] + DSE_DECAY * mt_params[k];
#endif
    for (b = 0; b < nb; b++) {
#if DSE_STREAMING
        const mt_feature_t *q = row;
        mt_forward(mt_params, q, MT_HIDDEN(h), z);
        mt_logit_grad(z, label, nbf);
#else
        const mt_feature_t *q = mt_store[order[b]];
        mt_forward(mt_params, q, MT_HIDDEN(h), z);
        mt_logit_grad(z, labels[order[b]], nbf);
#endif
#if H > 0
        /* deltas to the hidden pre-activation with the weights before this step: d[j] = (sum_c z[c] W2[c][j])
         * * (h > 0) */
        for (j = 0; j < H; j++) {
            float acc = 0.0f;
            for (c = 0; c < C; c++) acc += z[c] * mt_params[MT_W2 + c * H + j];
            d[j] = acc * (h[j] > 0.0f ? 1.0f : 0.0f);
        }
        /* layer 2: W2[c][j] += z[c] h[j], b2[c] += z[c] */
        for (c = 0; c < C; c++) {
            MT_ACC_F(u + MT_W2 + c * H, z[c], h, H);
#if MT_UPDATE_BUFFER
            u[MT_B2 + c] += z[c];
#else
            u[MT_B2 + c] = MT_SGD1(u[MT_B2 + c], z[c]);
#endif
        }
        /* layer 1: W1[j][k] += (d[j] 2^-f) q[k], b1[j] += d[j] */
        for (j = 0; j < H; j++) {
            float g = d[j] * DSE_FEATURE_SCALE;
            MT_ACC_Q(u + MT_W1 + j * F, g, q);
#if MT_UPDATE_BUFFER
            u[MT_B1 + j] += d[j];
#else
            u[MT_B1 + j] = MT_SGD1(u[MT_B1 + j], d[j]);
#endif
        }
#else
        for (c = 0; c < C; c++) {
            float g = z[c] * DSE_FEATURE_SCALE;
            MT_ACC_Q(u + MT_W1 + c * F, g, q);
#if MT_UPDATE_BUFFER
            u[MT_B1 + c] += z[c];
#else
            u[MT_B1 + c] = MT_SGD1(u[MT_B1 + c], z[c]);
#endif
        }
#endif
    }
#if MT_UPDATE_BUFFER
    for (k = 0; k < MT_PARAMS; k++) mt_params[k] = mt_params[k] - DSE_LR * u[k];  /* w -= lr * u */
#endif
}

#if DSE_STREAMING
/* ---- streaming (TinyOL): batch-1 steps as the samples arrive, with a ring of the last DSE_REPLAY features ---- */

#if DSE_REPLAY > 0
static mt_feature_t mt_ring[DSE_REPLAY][DSE_FEATURE];
static uint8_t mt_ring_labels[DSE_REPLAY];
static uint32_t mt_ring_count;  /* entries held (<= DSE_REPLAY) */
static uint32_t mt_ring_next;  /* slot of the next push: the oldest entry once the ring is full */
#endif
static uint32_t mt_steps;

static void mt_init_head(void)
{
    mt_init_uniform(DSE_HEAD_SEED, 0, MT_L1_OUT, F, mt_params + MT_W1);
    memset(mt_params + MT_B1, 0, sizeof(float) * MT_L1_OUT);
#if H > 0
    mt_init_uniform(DSE_HEAD_SEED, 1, C, H, mt_params + MT_W2);
    memset(mt_params + MT_B2, 0, sizeof(float) * C);
#endif
}

void mt_stream_begin(void *work_region)
{
    float *work = (float *)work_region;
    mt_init_head();
#if MT_UPDATE_BUFFER
    memset(work + MT_WORK_UPDATE, 0, sizeof(float) * MT_PARAMS);  /* v starts at 0 */
#else
    (void)work;
#endif
#if DSE_REPLAY > 0
    mt_ring_count = 0;
    mt_ring_next = 0;
#endif
    mt_steps = 0;
}

void mt_stream_sample(const mt_feature_t *feature, uint32_t label, void *work_region)
{
    float *work = (float *)work_region;
    mt_step(feature, label, work);
    mt_steps++;
#if DSE_REPLAY > 0
    {
        /* K and the row size opaque: the ring's code is the same for every K >= 1 and feature size (a cost model
         * over the configuration can count it; GCC specialised K = 1 otherwise) */
        uint32_t j, slot, cap = DSE_REPLAY, row = sizeof(mt_ring[0]);
        const uint8_t *ring = (const uint8_t *)mt_ring;
        __asm__("" : "+r"(cap), "+r"(row), "+r"(ring));
        slot = mt_ring_count < cap ? 0 : mt_ring_next;  /* the oldest entry */
        for (j = 0; j < mt_ring_count; j++) {
            mt_step((const mt_feature_t *)(ring + slot * row), mt_ring_labels[slot], work);
            slot = slot + 1 == cap ? 0 : slot + 1;
        }
        mt_steps += mt_ring_count;
        memcpy((uint8_t *)ring + mt_ring_next * row, feature, row);
        mt_ring_labels[mt_ring_next] = (uint8_t)label;
        mt_ring_next = mt_ring_next + 1 == cap ? 0 : mt_ring_next + 1;
        if (mt_ring_count < cap) mt_ring_count++;
    }
#endif
}

uint32_t mt_stream_steps(void) { return mt_steps; }

#else
/* mean softmax cross-entropy over the validation rows of the store */
static float mt_val_loss(const uint8_t *labels, float *work)
{
    uint32_t i, c;
    float sum = 0.0f, *z = work + MT_WORK_Z;
    for (i = DSE_N_TRAIN; i < DSE_N_SAMPLES; i++) {
        float m, s;
        mt_forward(mt_params, mt_store[i], MT_HIDDEN(work + MT_WORK_H), z);
        m = z[0];
        for (c = 1; c < C; c++)
            if (z[c] > m) m = z[c];
        s = 0.0f;
        for (c = 0; c < C; c++) s += mt_expf(z[c] - m);
        sum += (mt_logf(s) + m) - z[labels[i]];
    }
    return sum / (float)(DSE_N_SAMPLES - DSE_N_TRAIN);
}

void mt_train(const uint8_t *labels, mt_train_result *result, void *work_region)
{
    uint32_t epoch, start, best_epoch = 0, epochs_run = 0, improvements = 0;
    float best_loss = INFINITY, *work = (float *)work_region;
    uint16_t *order = (uint16_t *)(work + MT_WORK_FLOATS);
    mt_init_uniform(DSE_HEAD_SEED, 0, MT_L1_OUT, F, mt_params + MT_W1);
    memset(mt_params + MT_B1, 0, sizeof(float) * MT_L1_OUT);
#if H > 0
    mt_init_uniform(DSE_HEAD_SEED, 1, C, H, mt_params + MT_W2);
    memset(mt_params + MT_B2, 0, sizeof(float) * C);
#endif
#if MT_UPDATE_BUFFER
    memset(work + MT_WORK_UPDATE, 0, sizeof(float) * MT_PARAMS);  /* v starts at 0 */
#endif
#if MT_BEST_COPY
    memcpy(work + MT_WORK_BEST, mt_params, sizeof(mt_params));  /* the initial weights, if nothing improves */
#endif
    for (epoch = 1; epoch <= DSE_EPOCHS; epoch++) {
        float loss;
        mt_shuffle(DSE_HEAD_SEED, epoch, DSE_N_TRAIN, order);
        for (start = 0; start < DSE_N_TRAIN; start += B) {
            uint32_t nb = DSE_N_TRAIN - start < B ? DSE_N_TRAIN - start : B;
            __asm__("" : "+r"(nb));  /* mt_step sees no range or constant for nb (see there) */
            mt_step(order + start, nb, labels, work);
        }
        epochs_run = epoch;
        if (DSE_N_VAL == 0) continue;
        loss = mt_val_loss(labels, work);
#ifdef DSE_TRACE_EPOCHS
        mt_trace_epoch(epoch, loss);
#endif
        if (loss < best_loss) {  /* NaN never improves */
            best_loss = loss;
            best_epoch = epoch;
            improvements++;  /* reported: with restore_best the copies are the one data-dependent cost of training */
#if MT_BEST_COPY
            memcpy(work + MT_WORK_BEST, mt_params, sizeof(mt_params));
#endif
        }
        if (epoch - best_epoch >= DSE_PATIENCE) break;
    }
#if MT_BEST_COPY
    memcpy(mt_params, work + MT_WORK_BEST, sizeof(mt_params));
#else
    best_epoch = epochs_run;  /* the last weights are kept (no validation set, or restore_best off) */
#endif
    result->epochs_run = epochs_run;
    result->best_epoch = best_epoch;
    result->improvements = improvements;
}
#endif

#ifdef DSE_TRACE_WEIGHTS
const float *mt_head_params(void) { return mt_params; }
#endif

uint32_t mt_predict(const mt_feature_t *feature)
{
    uint32_t c, best = 0;
    mt_forward(mt_params, feature, MT_HIDDEN(mt_pred_h), mt_pred_z);
    for (c = 1; c < C; c++)
        if (mt_pred_z[c] > mt_pred_z[best]) best = c;
    return best;
}
