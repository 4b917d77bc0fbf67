/* Platform of the host board: the firmware as a native process. Output on stdout, exit(); the "cycle" counter is
 * CLOCK_MONOTONIC in nanoseconds (protocol.py reports it as host_ns, not cycles); stack and heap are not measured. */
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

void plat_exit(int status)
{
    fflush(stdout);
    exit(status);
}
