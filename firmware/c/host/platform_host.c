/* Platform of the host board: the firmware as a native process. Output on stdout, exit(); the "cycle" counter is
 * CLOCK_MONOTONIC in nanoseconds (protocol.py reports it as host_ns, not cycles); stack and heap are not measured;
 * the harness's input stream is the file named by $DSE_INPUTS (default dse_inputs.bin in the working directory). */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "platform.h"

void plat_init(void) {}

void plat_write(const char *text, size_t len)
{
    fwrite(text, 1, len, stdout);
}

/* kept out of line, so that a profiler can put a breakpoint on it as on the devices */
__attribute__((noinline)) void plat_phase_marker(uint32_t k)
{
    __asm__ volatile("" : : "r"(k) : "memory");
}

int plat_has_cycles(void) { return 1; }

uint64_t plat_cycles(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int32_t plat_stack_used(void) { return -1; }
int32_t plat_heap_used(void) { return -1; }

static FILE *input_file;

int plat_input_open(void)
{
    const char *path = getenv("DSE_INPUTS");
    input_file = fopen(path && *path ? path : "dse_inputs.bin", "rb");
    return input_file ? 0 : -1;
}

uint32_t plat_input_read(void *buf, uint32_t len)
{
    return input_file ? (uint32_t)fread(buf, 1, len, input_file) : 0u;
}

void plat_exit(int status)
{
    fflush(stdout);
    exit(status);
}
