/* The deployed image's main(): what a product ships and what studies price. Collect DSE_N_SAMPLES labelled inputs
 * from the sensor into ONE input buffer, each forward through the frozen int8 layers into the sample store, train
 * the head, then classify every further input. Streaming (DSE_STREAMING): no store and no labels array; each
 * input's feature goes into the one feature buffer and trains the head at once (mt_stream_sample). No stored inputs, no test set, no output protocol: the validation
 * build (harness.c) adds those. Built as its own ELF beside the validation ELF (firmware/build.py, image
 * "deployed") so that its flash and static RAM are measured, not guessed.
 *
 * plat_sensor_read (platform.h) is weak here: without a sensor driver the image collects nothing and exits with
 * status 1; a product links its driver (its code is then the product's, outside the priced runtime). */
#include <stdint.h>

#include "dse_model.h"
#include "microtl.h"
#include "platform.h"

static int8_t input[DSE_INPUT_SIZE];  /* the sensor's input buffer */
#if !DSE_STREAMING
static uint8_t labels[DSE_N_SAMPLES > 0 ? DSE_N_SAMPLES : 1];  /* the user's labels of the collected samples */
#endif
static mt_feature_t feature[DSE_FEATURE];  /* inference: one input's feature */
volatile uint32_t dse_last_class;  /* the latest inference, for the product to act on */

__attribute__((weak)) int plat_sensor_read(int8_t *buf)
{
    (void)buf;
    return -1;
}

int main(void)
{
    uint32_t i;
    int label;
#if DSE_STREAMING

    plat_init();
    mt_stream_begin(dse_work_region());
    for (i = 0; i < DSE_N_SAMPLES; i++) {
        label = plat_sensor_read(input);
        if (label < 0 || (uint32_t)label >= DSE_CLASSES) plat_exit(1);
        dse_frozen_forward(input, feature);
        mt_stream_sample(feature, (uint32_t)label, dse_work_region());
    }
#else
    mt_train_result train;

    plat_init();
    for (i = 0; i < DSE_N_SAMPLES; i++) {
        label = plat_sensor_read(input);
        if (label < 0 || (uint32_t)label >= DSE_CLASSES) plat_exit(1);
        labels[i] = (uint8_t)label;
        dse_frozen_forward(input, mt_store_row(i));
    }
    mt_train(labels, &train, dse_work_region());
#endif
    while (plat_sensor_read(input) >= 0) {
        dse_frozen_forward(input, feature);
        dse_last_class = mt_predict(feature);
    }
    plat_exit(0);
}
