/* The MicroTL trainer: mirrors models/head.py and models/prng.py (see those modules for the reference).
 *
 * - prng: counter-based generator value = mix32(mix32(mix32(seed) ^ stream) + index) (32-bit wrap-around),
 *   bit-identical with models/prng.py;
 * - sample store: N features of F elements (static), rows 0..Nt-1 training, Nt..N-1 validation; the elements are
 *   int8, or int16 when the cut layer outputs int16 (DSE_FEATURE_BITS 16: har_rnn's gru1 / gru2);
 * - head: FC(F -> C), or FC(F -> H), ReLU, FC(H -> C); float32 weights [out][in], init uniform(+-1/sqrt(fan_in))
 *   from the prng (stream 0x1000 + layer), zero biases;
 * - every epoch e (1-based): training order = indices sorted by (rand_u32(seed, 0x2000 + e, i), i); mini-batches
 *   of B samples, each sample forward and backward on its own, dequantized on the fly (q * 2^-f: layer 1 sums
 *   w * (float)q and scales the sum by 2^-f, exact for a power of two); softmax cross-entropy (mean over the batch);
 *   SGD as torch.optim.SGD (g = grad + decay * w; v = momentum * v + g; w -= lr * v) with ONE update buffer u per
 *   parameter that is both the momentum and the batch's gradient accumulator: at a batch's start
 *   u = momentum * u + decay * w, then u += each sample's gradient, then w -= lr * u. At momentum 0 and batch 1
 *   (DSE_HAS_MOMENTUM 0, DSE_BATCH 1) there is no buffer: every sample updates w -= lr * (grad + decay * w);
 * - after each epoch the mean validation cross-entropy decides early stopping: training stops after `patience`
 *   epochs without improvement; with DSE_RESTORE_BEST the weights of the lowest loss are kept (a copy in the work
 *   region), without it the last weights are (no validation set: the final weights either way).
 * float32 throughout; built with -ffp-contract=off so that no fused multiply-add changes a rounding.
 * Weights and the sample store are static; everything else training needs (update buffer, best copy, hidden
 * activations and deltas, logits, shuffle order) lives in the caller's work region of MT_TRAIN_WORK_BYTES, which
 * nothing needs outside mt_train (the frozen network's arena can share it: collection and training never overlap).
 * Streaming (DSE_STREAMING 1, docs/firmware.md): no store, no shuffle, no validation; mt_stream_begin, then
 * mt_stream_sample per collected sample (batch-1 steps on it and on a ring of the last DSE_REPLAY features); the
 * work region then lives through the collection, beside the frozen arena. */
#ifndef DSE_MICROTL_H
#define DSE_MICROTL_H

#include <stdint.h>

/* Element type of a stored feature: the cut layer's output width (include dse_model.h first; 8 when it does not
 * say). */
#ifndef DSE_FEATURE_BITS
#define DSE_FEATURE_BITS 8
#endif
#if DSE_FEATURE_BITS == 16
typedef int16_t mt_feature_t;
#elif DSE_FEATURE_BITS == 8
typedef int8_t mt_feature_t;
#else
#error "DSE_FEATURE_BITS must be 8 or 16"
#endif
#ifndef DSE_FEATURE_BYTES
#define DSE_FEATURE_BYTES (DSE_FEATURE * (DSE_FEATURE_BITS / 8))
#endif

/* Design switches (codegen writes them; defaults: stored mode, momentum on, best weights restored) */
#ifndef DSE_STREAMING
#define DSE_STREAMING 0  /* 1: streaming (TinyOL): mt_stream_begin / mt_stream_sample instead of the store + mt_train */
#endif
#ifndef DSE_REPLAY
#define DSE_REPLAY 0  /* streaming: ring of the K most recent earlier features, each trained with every new sample */
#endif
#ifndef DSE_HAS_MOMENTUM
#define DSE_HAS_MOMENTUM 1
#endif
#ifndef DSE_RESTORE_BEST
#define DSE_RESTORE_BEST 1
#endif

/* Head shape: parameters in one flat vector [W1 [L1_OUT][F] | b1 | W2 [C][H] | b2] */
#if DSE_HIDDEN > 0
#define MT_L1_OUT DSE_HIDDEN
#define MT_PARAMS (DSE_HIDDEN * DSE_FEATURE + DSE_HIDDEN + DSE_CLASSES * DSE_HIDDEN + DSE_CLASSES)
#else
#define MT_L1_OUT DSE_CLASSES
#define MT_PARAMS (DSE_CLASSES * DSE_FEATURE + DSE_CLASSES)
#endif
/* no update buffer at momentum 0 and batch 1: each sample updates the weights directly */
#define MT_UPDATE_BUFFER (DSE_HAS_MOMENTUM || DSE_BATCH > 1)
/* the best epoch's weights are copied only when restored (and only when there is a validation set) */
#define MT_BEST_COPY (DSE_RESTORE_BEST && DSE_N_VAL > 0)
/* float32 slots of the work region: update buffer, best copy, hidden activations and deltas, logits */
#define MT_WORK_FLOATS ((MT_UPDATE_BUFFER ? MT_PARAMS : 0) + (MT_BEST_COPY ? MT_PARAMS : 0) + 2 * DSE_HIDDEN + \
                        DSE_CLASSES)
#if DSE_STREAMING
/* streaming: no shuffle order (the work region persists across the collection: the update buffer is live from
 * mt_stream_begin to the last sample) */
#define MT_TRAIN_WORK_BYTES (4 * MT_WORK_FLOATS)
#else
/* then the uint16 shuffle order of the training samples (at least 1), the total rounded up to 4 bytes */
#define MT_ORDER_SLOTS (DSE_N_TRAIN > 0 ? DSE_N_TRAIN : 1)
#define MT_TRAIN_WORK_BYTES ((4 * MT_WORK_FLOATS + 2 * MT_ORDER_SLOTS + 3) / 4 * 4)
#endif

#define MT_INIT_STREAM 0x1000u
#define MT_SHUFFLE_STREAM 0x2000u

/* prng (models/prng.py) */
uint32_t mt_mix32(uint32_t x);
uint32_t mt_rand_u32(uint32_t seed, uint32_t stream, uint32_t index);
float mt_uniform01(uint32_t seed, uint32_t stream, uint32_t index);  /* (v >> 8) * 2^-24 */
/* w[row * fan_in + col] = (2u - 1) * (1 / sqrtf(fan_in)), u = uniform01(seed, 0x1000 + layer, row * fan_in + col) */
void mt_init_uniform(uint32_t seed, uint32_t layer, uint32_t fan_out, uint32_t fan_in, float *w);
/* order[0..n) = 0..n-1 sorted by (rand_u32(seed, 0x2000 + epoch, i), i) (heap sort, deterministic) */
void mt_shuffle(uint32_t seed, uint32_t epoch, uint32_t n, uint16_t *order);

/* float32 exp and log from basic arithmetic only (within 1 ulp): bit-identical on every target, unlike the C
 * libraries' expf/logf */
float mt_expf(float x);
float mt_logf(float x);

/* FNV-1a 32 over len bytes, continuing from hash h (start with MT_FNV_OFFSET). */
#define MT_FNV_OFFSET 2166136261u
uint32_t mt_fnv1a(uint32_t h, const void *data, uint32_t len);

#if DSE_STREAMING
/* Streaming (TinyOL; docs/firmware.md): no sample store. mt_stream_begin initialises a fresh head (seed
 * DSE_HEAD_SEED, as mt_train), zeroes the update buffer and empties the ring; then mt_stream_sample per collected
 * sample, in collection order: one SGD step of batch 1 on (feature, label), one on each ring entry (oldest first),
 * then the sample joins the ring of DSE_REPLAY features (evicting the oldest when full). The weights after the last
 * step stay in place for mt_predict. work: MT_TRAIN_WORK_BYTES, 4-byte aligned, kept from mt_stream_begin to the
 * last mt_stream_sample (so it cannot share the frozen arena, which every forward uses in between). */
void mt_stream_begin(void *work_region);
void mt_stream_sample(const mt_feature_t *feature, uint32_t label, void *work_region);
/* SGD steps taken since mt_stream_begin (sample i: 1 + min(i, DSE_REPLAY)) */
uint32_t mt_stream_steps(void);
#else
/* The sample store (DSE_N_SAMPLES rows of DSE_FEATURE elements of mt_feature_t; mt_store_bytes() bytes). */
mt_feature_t *mt_store_row(uint32_t i);
uint32_t mt_store_bytes(void);

typedef struct {
    uint32_t epochs_run;
    uint32_t best_epoch;  /* 1-based epoch of the kept weights; 0 = the initial weights (restore_best off: the
                           * last epoch run) */
    uint32_t improvements;  /* validation-loss improvements (<= the best epoch); with DSE_RESTORE_BEST each is a
                             * copy of the weights */
} mt_train_result;

/* Train a fresh head (seed DSE_HEAD_SEED) on the store; labels[i] is the class of store row i. The kept weights
 * stay in place for mt_predict. work: MT_TRAIN_WORK_BYTES, 4-byte aligned, free for mt_train's use (its contents
 * are not needed before or after). */
void mt_train(const uint8_t *labels, mt_train_result *result, void *work);
#endif

#ifdef DSE_TRACE_EPOCHS
/* Called after each epoch's validation (built with DSE_TRACE_EPOCHS; harness.c prints an "epoch" line). */
void mt_trace_epoch(uint32_t epoch, float val_loss);
#endif

#ifdef DSE_TRACE_WEIGHTS
/* The head's parameters, MT_PARAMS floats [W1 | b1 | W2 | b2] (built with DSE_TRACE_WEIGHTS: harness.c prints their
 * FNV-1a after training, which codegen's replay predicts) */
const float *mt_head_params(void);
#endif

/* Class (argmax of the logits, first maximum) of one feature of DSE_FEATURE elements (small statics only: the
 * hidden activations and logits of one sample). */
uint32_t mt_predict(const mt_feature_t *feature);

#endif
