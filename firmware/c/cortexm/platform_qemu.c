/* platform.h for the emulated board qemu-an386 (QEMU mps2-an386, Cortex-M4F): output, exit and the harness's
 * input stream (SYS_OPEN/SYS_READ of the host file dse_inputs.bin, relative to QEMU's working directory, where the
 * board puts it) through Arm semihosting (BKPT 0xAB; QEMU runs with -semihosting-config enable=on,target=native),
 * no cycle counter (DWT reads
 * 0 under QEMU; instruction counts come from the TCG plugin, which snapshots its counter whenever
 * plat_phase_marker is entered), stack and heap high-water marks from startup.c / syscalls.c. */
#include <stddef.h>
#include <stdint.h>

#include "../platform.h"
#include "cortexm.h"

#define SYS_OPEN 0x01
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023

static int semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int)r0;
}

static int out_handle = -1;

void plat_init(void)
{
    /* The FPU is already on (Reset_Handler); repeating it is harmless. */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm volatile("dsb\n isb" ::: "memory");
    if (out_handle < 0) {
        /* QEMU 7.2 writes nothing on handle 1 until ":tt" is opened (mode 4 = "w"). */
        const uint32_t args[3] = {(uint32_t)(uintptr_t)":tt", 4u, 3u};
        out_handle = semihost(SYS_OPEN, args);
    }
}

void plat_write(const char *text, size_t len)
{
    if (out_handle < 0) {
        plat_init();
    }
    while (len > 0) {
        const uint32_t args[3] = {(uint32_t)out_handle, (uint32_t)(uintptr_t)text, (uint32_t)len};
        int left = semihost(SYS_WRITE, args); /* bytes NOT written */
        if (left < 0 || (size_t)left >= len) {
            return;
        }
        text += len - (size_t)left;
        len = (size_t)left;
    }
}

/* The plugin records its instruction counter when the first instruction of this function executes: it must stay
 * a real, externally visible, never inlined, cloned or merged function (noipa), with a body of its own. */
volatile uint32_t dse_last_marker;

__attribute__((noinline, noipa, used)) void plat_phase_marker(uint32_t k)
{
    dse_last_marker = k;
}

int plat_has_cycles(void)
{
    return 0;
}

static int input_handle = -1;

int plat_input_open(void)
{
    static const char path[] = "dse_inputs.bin";
    const uint32_t args[3] = {(uint32_t)(uintptr_t)path, 1u /* "rb" */, (uint32_t)(sizeof path - 1)};
    input_handle = semihost(SYS_OPEN, args);
    return input_handle < 0 ? -1 : 0;
}

uint32_t plat_input_read(void *buf, uint32_t len)
{
    uint32_t done = 0;
    while (input_handle >= 0 && done < len) {
        const uint32_t args[3] = {(uint32_t)input_handle, (uint32_t)(uintptr_t)((char *)buf + done), len - done};
        int left = semihost(SYS_READ, args); /* bytes NOT read; all of them at the end of the file */
        if (left < 0 || (uint32_t)left >= len - done) {
            break;
        }
        done += (len - done) - (uint32_t)left;
    }
    return done;
}

uint64_t plat_cycles(void)
{
    return 0;
}

int32_t plat_stack_used(void)
{
    return cm_stack_used();
}

int32_t plat_heap_used(void)
{
    return cm_heap_used();
}

void plat_exit(int status)
{
    const uint32_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    semihost(SYS_EXIT_EXTENDED, args);
    /* Not reached under QEMU; older semihosting hosts know only SYS_EXIT (status 0 or 1). */
    semihost(SYS_EXIT, (const void *)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                                                : ADP_STOPPED_RUNTIME_ERROR_UNKNOWN));
    for (;;) {
    }
}
