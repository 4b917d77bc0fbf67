/* A test "sensor driver" for the deployed image (firmware/c/deployed.c) on the host board: serves the records of
 * the validation harness's input stream ($DSE_INPUTS) as sensor readings - the N collection samples with their
 * labels, then the test inputs - and scores each inference (dse_last_class) against its label. At exit it prints
 * {"deployed":{"correct":C,"test":T}}, which must equal the validation build's result line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dse_model.h"
#include "platform.h"

extern volatile uint32_t dse_last_class;

static uint32_t served, correct, tested;
static int last_label = -1;

static void report(void)
{
    printf("{\"deployed\":{\"correct\":%u,\"test\":%u}}\n", (unsigned)correct, (unsigned)tested);
    fflush(stdout);
}

int plat_sensor_read(int8_t *buf)
{
    uint8_t label, header[20];
    if (served == 0) {
        if (plat_input_open() != 0 || plat_input_read(header, sizeof header) != sizeof header) return -1;
        atexit(report);
    }
    if (served > DSE_N_SAMPLES) { /* the previous reading was classified: score it */
        tested++;
        if (dse_last_class == (uint32_t)last_label) correct++;
    }
    if (plat_input_read(&label, 1) != 1 || plat_input_read(buf, DSE_INPUT_SIZE) != DSE_INPUT_SIZE) return -1;
    served++;
    last_label = label;
    return label;
}
