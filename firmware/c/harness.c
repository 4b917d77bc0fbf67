/* The validation build's main(): the deployed image's work (collect features through the frozen int8 layers,
 * train the head, classify) driven by a harness that feeds the collection and test inputs with their labels from
 * the host (plat_input_read: the input stream of docs/firmware.md), evaluates, and reports.
 * Output: JSON lines, protocol 1 (docs/firmware.md), written with a tiny integer-only writer (no printf, no float
 * formatting: keeps flash small). plat_phase_marker(k) brackets each phase's work, outside any printing. The time
 * spent waiting for the host's inputs is left out of the printed cycles (it is the harness's, not the device's);
 * on qemu-an386 the instructions of plat_input_read (a few dozen per input, the host does the copy) stay in. */
#include <stdint.h>

#include "dse_model.h"
#include "microtl.h"
#include "platform.h"

/* ---- JSON-lines writer: one line buffered, flushed at '\n' or when full ----------------------------------- */

static char out_buf[96];
static uint32_t out_len;

static void out_flush(void)
{
    if (out_len) plat_write(out_buf, out_len);
    out_len = 0;
}

static void out_char(char c)
{
    out_buf[out_len++] = c;
    if (c == '\n' || out_len == sizeof(out_buf)) out_flush();
}

static void out_str(const char *s)
{
    while (*s) out_char(*s++);
}

static void out_u64(uint64_t v)
{
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (unsigned)(v % 10u));
        v /= 10u;
    } while (v);
    while (n) out_char(digits[--n]);
}

static void out_i32(int32_t v)
{
    if (v < 0) {
        out_char('-');
        out_u64((uint64_t)(-(int64_t)v));
    } else {
        out_u64((uint64_t)v);
    }
}

static void out_hex8(uint8_t b)
{
    static const char hex[] = "0123456789abcdef";
    out_char(hex[b >> 4]);
    out_char(hex[b & 15]);
}

static void out_phase(const char *phase, const char *edge)
{
    out_str("{\"event\":\"phase\",\"phase\":\"");
    out_str(phase);
    out_str("\",\"edge\":\"");
    out_str(edge);
    out_str("\"}\n");
}

static void out_cycles(const char *phase, uint64_t cycles)
{
    out_str("{\"event\":\"cycles\",\"phase\":\"");
    out_str(phase);
    out_str("\",\"cycles\":");
    out_u64(cycles);
    out_str("}\n");
}

#ifdef DSE_TRACE_EPOCHS
/* {"event":"epoch","epoch":e,"val_loss_bits":"0x3e7a0000"}: the float32 bits of the validation loss */
void mt_trace_epoch(uint32_t epoch, float val_loss)
{
    union { float f; uint32_t u; } bits;
    bits.f = val_loss;
    out_str("{\"event\":\"epoch\",\"epoch\":");
    out_u64(epoch);
    out_str(",\"val_loss_bits\":\"0x");
    out_hex8((uint8_t)(bits.u >> 24));
    out_hex8((uint8_t)(bits.u >> 16));
    out_hex8((uint8_t)(bits.u >> 8));
    out_hex8((uint8_t)bits.u);
    out_str("\"}\n");
}
#endif

#ifdef DSE_TRACE_WEIGHTS
/* {"event":"weights","fnv1a":"0x...","n":P}: FNV-1a over the head's float32 parameters as they lie in memory */
static void out_weights(void)
{
    uint32_t h = mt_fnv1a(MT_FNV_OFFSET, mt_head_params(), 4u * MT_PARAMS);
    out_str("{\"event\":\"weights\",\"fnv1a\":\"0x");
    out_hex8((uint8_t)(h >> 24));
    out_hex8((uint8_t)(h >> 16));
    out_hex8((uint8_t)(h >> 8));
    out_hex8((uint8_t)h);
    out_str("\",\"n\":");
    out_u64(MT_PARAMS);
    out_str("}\n");
}
#endif

/* ---- input stream ------------------------------------------------------------------------------------------ */

#define DSE_INPUT_MAGIC 0x49455344u /* "DSEI" little-endian */
#define DSE_INPUT_VERSION 1u

static int8_t input[DSE_INPUT_SIZE];  /* the one input buffer: the deployed image's sensor buffer */
#if DSE_STREAMING
static mt_feature_t feature[DSE_FEATURE];  /* the one feature buffer: each collected sample's, then each test input's */
#else
static uint8_t labels[DSE_N_SAMPLES > 0 ? DSE_N_SAMPLES : 1];
static mt_feature_t feature[DSE_FEATURE];  /* evaluation: one test sample's feature */
#endif
static uint64_t feed_cycles;  /* plat_cycles() spent waiting for inputs, per phase (subtracted) */

/* The stream cannot feed the run: one error line, exit status 3 (the board's parser reports the line). */
static void input_failed(const char *detail, const char *what, uint32_t i, uint32_t got, uint32_t want)
    __attribute__((noreturn));
static void input_failed(const char *detail, const char *what, uint32_t i, uint32_t got, uint32_t want)
{
    out_str("{\"event\":\"error\",\"what\":\"input\",\"detail\":\"");
    out_str(detail);
    out_str(" at ");
    out_str(what);
    out_str(" ");
    out_u64(i);
    out_str("\",\"got\":");
    out_u64(got);
    out_str(",\"want\":");
    out_u64(want);
    out_str("}\n");
    out_flush();
    plat_exit(3);
}

static uint32_t read_u32(const char *what, uint32_t i)
{
    uint8_t b[4];
    uint32_t got = plat_input_read(b, 4);
    if (got != 4) input_failed("input stream ended", what, i, got, 4);
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}

/* One record: its label, then DSE_INPUT_SIZE int8 values into `input`. */
static uint8_t feed(const char *what, uint32_t i)
{
    uint8_t label;
    uint64_t t = plat_cycles();
    uint32_t got = plat_input_read(&label, 1);
    if (got == 1) got += plat_input_read(input, DSE_INPUT_SIZE);
    feed_cycles += plat_cycles() - t;
    if (got != 1u + DSE_INPUT_SIZE) input_failed("input stream ended", what, i, got, 1u + DSE_INPUT_SIZE);
    if (label >= DSE_CLASSES) input_failed("label out of range", what, i, label, DSE_CLASSES);
    return label;
}

static void open_inputs(void)
{
    if (plat_input_open() != 0) input_failed("no input stream (dse_inputs.bin)", "header", 0, 0, 0);
    if (read_u32("header", 0) != DSE_INPUT_MAGIC) input_failed("not an input stream", "header", 0, 0, 0);
    if (read_u32("header", 1) != DSE_INPUT_VERSION) input_failed("input stream version", "header", 1, 0, 0);
    uint32_t n = read_u32("header", 2), t = read_u32("header", 3), size = read_u32("header", 4);
    if (n != DSE_N_SAMPLES) input_failed("samples differ from this build", "header", 2, n, DSE_N_SAMPLES);
    if (t != DSE_N_TEST) input_failed("test inputs differ from this build", "header", 3, t, DSE_N_TEST);
    if (size != DSE_INPUT_SIZE) input_failed("input size differs from this build", "header", 4, size, DSE_INPUT_SIZE);
}

#if DSE_STREAMING
static void out_features(uint32_t hash)
{
    out_str("{\"event\":\"features\",\"fnv1a\":\"0x");
    out_hex8((uint8_t)(hash >> 24));
    out_hex8((uint8_t)(hash >> 16));
    out_hex8((uint8_t)(hash >> 8));
    out_hex8((uint8_t)hash);
    out_str("\",\"n\":");
    out_u64(DSE_N_SAMPLES);
    out_str(",\"bytes\":");
    out_u64(DSE_FEATURE_BYTES);
    out_str("}\n");
}

#ifdef DSE_DUMP_FEATURES
static void out_feature(uint32_t i, const mt_feature_t *f)
{
    const uint8_t *row = (const uint8_t *)f;
    uint32_t k;
    out_str("{\"event\":\"feature\",\"i\":");
    out_u64(i);
    out_str(",\"hex\":\"");
    for (k = 0; k < DSE_FEATURE_BYTES; k++) out_hex8(row[k]);
    out_str("\"}\n");
}
#endif
#endif

/* ---- main ------------------------------------------------------------------------------------------------- */

#if DSE_STREAMING
/* Streaming (docs/firmware.md): the head trains on each feature as it is produced, so collection and training
 * interleave. Markers, in order: 2/3 around mt_stream_begin (training); 0 (collection begins); per sample, after its
 * forward: 2, mt_stream_sample, 3 (training), the feature hashed (and dumped), 6 (harness work: left out of every
 * phase); 1 (collection ends); 4/5 around the evaluation. The board parsers (firmware/protocol.py, marker_spans)
 * count training = the sum of the 2..3 intervals and collection = 0..1 minus the 2..6 intervals: the same meaning
 * as in stored mode (collection = the frozen forwards, training = all SGD steps). */
int main(void)
{
    uint32_t i, correct = 0, hash = MT_FNV_OFFSET;
    uint64_t t0, t1, t4, t5, ta, tb, feed_collection, init_cycles, train_cycles, harness_cycles;

    plat_init();
    out_str("{\"event\":\"hello\",\"firmware\":\"microtl-dse\",\"protocol\":1,\"samples\":");
    out_u64(DSE_N_SAMPLES);
    out_str(",\"train\":");
    out_u64(DSE_N_TRAIN);
    out_str(",\"val\":");
    out_u64(DSE_N_VAL);
    out_str(",\"test\":");
    out_u64(DSE_N_TEST);
    out_str(",\"feature\":");
    out_u64(DSE_FEATURE_BYTES);
    out_str(",\"mode\":\"streaming\",\"replay\":");
    out_u64(DSE_REPLAY);
    out_str("}\n");
    out_flush();
    open_inputs();

    /* a fresh head (training: its initialisation, as in mt_train) */
    plat_phase_marker(2);
    ta = plat_cycles();
    mt_stream_begin(dse_work_region());
    init_cycles = plat_cycles() - ta;
    plat_phase_marker(3);

    /* collection, each sample trained as it arrives */
    out_phase("collection", "begin");
    train_cycles = harness_cycles = 0;
    plat_phase_marker(0);
    t0 = plat_cycles();
    for (i = 0; i < DSE_N_SAMPLES; i++) {
        uint8_t label = feed("collection sample", i);
        dse_frozen_forward(input, feature);
        plat_phase_marker(2);
        ta = plat_cycles();
        mt_stream_sample(feature, label, dse_work_region());
        tb = plat_cycles();
        plat_phase_marker(3);
        train_cycles += tb - ta;
        /* the features event's hash: the same FNV over the same bytes as stored mode's over its store */
        hash = mt_fnv1a(hash, feature, DSE_FEATURE_BYTES);
#ifdef DSE_DUMP_FEATURES
        out_feature(i, feature);
#endif
        harness_cycles += plat_cycles() - tb;
        plat_phase_marker(6);
    }
    t1 = plat_cycles();
    plat_phase_marker(1);
    out_phase("collection", "end");
    feed_collection = feed_cycles;
    feed_cycles = 0;
    out_features(hash);

    out_phase("training", "begin");  /* interleaved with the collection above (markers 2/3) */
    out_phase("training", "end");
    out_str("{\"event\":\"train\",\"epochs_run\":1,\"best_epoch\":1,\"improvements\":0,\"steps\":");
    out_u64(mt_stream_steps());
    out_str("}\n");
#ifdef DSE_TRACE_WEIGHTS
    out_weights();
#endif

    out_phase("evaluation", "begin");
    plat_phase_marker(4);
    t4 = plat_cycles();
    for (i = 0; i < DSE_N_TEST; i++) {
        uint8_t label = feed("test input", i);
        dse_frozen_forward(input, feature);
        if (mt_predict(feature) == label) correct++;
    }
    t5 = plat_cycles();
    plat_phase_marker(5);
    out_phase("evaluation", "end");
    out_str("{\"event\":\"result\",\"correct\":");
    out_u64(correct);
    out_str(",\"test\":");
    out_u64(DSE_N_TEST);
    out_str("}\n");

    if (plat_has_cycles()) {
        out_cycles("collection", t1 - t0 - feed_collection - train_cycles - harness_cycles);
        out_cycles("training", init_cycles + train_cycles);
        out_cycles("evaluation", t5 - t4 - feed_cycles);
    }
    out_str("{\"event\":\"memory\",\"stack_bytes\":");
    out_i32(plat_stack_used());
    out_str(",\"heap_bytes\":");
    out_i32(plat_heap_used());
    out_str("}\n");
    out_str("{\"event\":\"done\",\"status\":0}\n");
    out_flush();
    plat_exit(0);
}
#else
int main(void)
{
    uint32_t i, correct = 0, hash;
    uint64_t t0, t1, t2, t3, t4, t5, feed_collection;
    mt_train_result train;

    plat_init();
    out_str("{\"event\":\"hello\",\"firmware\":\"microtl-dse\",\"protocol\":1,\"samples\":");
    out_u64(DSE_N_SAMPLES);
    out_str(",\"train\":");
    out_u64(DSE_N_TRAIN);
    out_str(",\"val\":");
    out_u64(DSE_N_VAL);
    out_str(",\"test\":");
    out_u64(DSE_N_TEST);
    out_str(",\"feature\":");
    out_u64(DSE_FEATURE_BYTES);  /* bytes of one stored feature (2 per element for int16) */
    out_str("}\n");
    out_flush();
    open_inputs();

    /* collection: N inputs from the sensor (here: the host) forward to the cut, features into the store */
    out_phase("collection", "begin");
    plat_phase_marker(0);
    t0 = plat_cycles();
    for (i = 0; i < DSE_N_SAMPLES; i++) {
        labels[i] = feed("collection sample", i);
        dse_frozen_forward(input, mt_store_row(i));
    }
    t1 = plat_cycles();
    plat_phase_marker(1);
    out_phase("collection", "end");
    feed_collection = feed_cycles;
    feed_cycles = 0;

    hash = MT_FNV_OFFSET;
    /* over the stored bytes as they lie in memory: int16 elements little-endian (host and Cortex-M alike) */
    for (i = 0; i < DSE_N_SAMPLES; i++) hash = mt_fnv1a(hash, mt_store_row(i), DSE_FEATURE_BYTES);
    out_str("{\"event\":\"features\",\"fnv1a\":\"0x");
    out_hex8((uint8_t)(hash >> 24));
    out_hex8((uint8_t)(hash >> 16));
    out_hex8((uint8_t)(hash >> 8));
    out_hex8((uint8_t)hash);
    out_str("\",\"n\":");
    out_u64(DSE_N_SAMPLES);
    out_str(",\"bytes\":");
    out_u64(DSE_FEATURE_BYTES);
    out_str("}\n");
#ifdef DSE_DUMP_FEATURES
    for (i = 0; i < DSE_N_SAMPLES; i++) {
        const uint8_t *row = (const uint8_t *)mt_store_row(i);
        uint32_t k;
        out_str("{\"event\":\"feature\",\"i\":");
        out_u64(i);
        out_str(",\"hex\":\"");
        for (k = 0; k < DSE_FEATURE_BYTES; k++) out_hex8(row[k]);
        out_str("\"}\n");
    }
#endif

    /* training: the head on the stored features */
    out_phase("training", "begin");
    plat_phase_marker(2);
    t2 = plat_cycles();
    mt_train(labels, &train, dse_work_region());
    t3 = plat_cycles();
    plat_phase_marker(3);
    out_phase("training", "end");
    out_str("{\"event\":\"train\",\"epochs_run\":");
    out_u64(train.epochs_run);
    out_str(",\"best_epoch\":");
    out_u64(train.best_epoch);
    out_str(",\"improvements\":");
    out_u64(train.improvements);
    out_str("}\n");
#ifdef DSE_TRACE_WEIGHTS
    out_weights();
#endif

    /* evaluation: held-out target test inputs through the frozen layers and the trained head */
    out_phase("evaluation", "begin");
    plat_phase_marker(4);
    t4 = plat_cycles();
    for (i = 0; i < DSE_N_TEST; i++) {
        uint8_t label = feed("test input", i);
        dse_frozen_forward(input, feature);
        if (mt_predict(feature) == label) correct++;
    }
    t5 = plat_cycles();
    plat_phase_marker(5);
    out_phase("evaluation", "end");
    out_str("{\"event\":\"result\",\"correct\":");
    out_u64(correct);
    out_str(",\"test\":");
    out_u64(DSE_N_TEST);
    out_str("}\n");

    if (plat_has_cycles()) {
        out_cycles("collection", t1 - t0 - feed_collection);
        out_cycles("training", t3 - t2);
        out_cycles("evaluation", t5 - t4 - feed_cycles);
    }
    out_str("{\"event\":\"memory\",\"stack_bytes\":");
    out_i32(plat_stack_used());
    out_str(",\"heap_bytes\":");
    out_i32(plat_heap_used());
    out_str("}\n");
    out_str("{\"event\":\"done\",\"status\":0}\n");
    out_flush();
    plat_exit(0);
}
#endif
