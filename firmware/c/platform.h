/* The board interface of the firmware: everything that differs between the host process, the emulated Cortex-M4
 * (QEMU mps2-an386, semihosting) and the real nRF52840-DK (RTT, DWT). Portable code calls only these.
 * Implementations: host/platform_host.c, cortexm/platform_qemu.c, cortexm/platform_nrf52840.c. */
#ifndef DSE_PLATFORM_H
#define DSE_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* Called first in main(): enable the FPU, open the output channel, start counters. */
void plat_init(void);

/* Write raw bytes to the output channel (JSON lines are built by the caller). */
void plat_write(const char *text, size_t len);

/* Phase boundary k (0 = collection begin, 1 = collection end, 2 = training begin, 3 = training end,
 * 4 = evaluation begin, 5 = evaluation end). On qemu-an386 the instruction-count plugin records its counter each
 * time this function is entered, so it must stay a real, non-inlined function that is called exactly at the
 * boundaries. */
void plat_phase_marker(uint32_t k);

/* Cycle counter (DWT->CYCCNT on silicon, a monotonic clock in ns on the host); returns 0 from plat_has_cycles()
 * where there is none (QEMU: DWT reads 0). */
int plat_has_cycles(void);
uint64_t plat_cycles(void);

/* Bytes of stack used so far (painted-stack high-water mark), and heap high-water (bytes handed out by _sbrk);
 * -1 where not measurable (host). */
int32_t plat_stack_used(void);
int32_t plat_heap_used(void);

/* End the program with an exit status (semihosting SYS_EXIT on QEMU, exit() on the host, a breakpoint/loop on
 * silicon after flushing the output). */
void plat_exit(int status) __attribute__((noreturn));

#endif
