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
 * 4 = evaluation begin, 5 = evaluation end; streaming adds 6 = end of the harness's per-sample work, and calls 2/3
 * around every training step: the order of the calls, firmware/protocol.py marker_spans, says what they bound). On qemu-an386 the instruction-count plugin records its counter each
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

/* The deployed image's sensor (deployed.c): fill one input of DSE_INPUT_SIZE int8 values (quantized with the
 * model's input frac bits) and return its label (0..classes-1; during inference any value >= 0), or a negative
 * value when there is no input. deployed.c holds a weak default (no sensor: returns -1) that the product's sensor
 * driver replaces. */
int plat_sensor_read(int8_t *buf);

/* The validation harness's input stream from the host (harness.c; built with DSE_HARNESS): the bytes of the
 * inputs file codegen wrote (docs/firmware.md, "Input stream"). qemu-an386: semihosting SYS_OPEN/SYS_READ of
 * "dse_inputs.bin" in QEMU's working directory; host: the file named by $DSE_INPUTS (default dse_inputs.bin);
 * nrf52840dk: RTT down channel 0, written by the host while the firmware runs.
 * plat_input_open: 0 when the stream is there, -1 otherwise. plat_input_read: reads up to len bytes, waiting for
 * them where the host feeds a channel (bounded: a host that is gone ends the wait); returns the bytes read, fewer
 * than len only when the stream ended or the host is gone. */
int plat_input_open(void);
uint32_t plat_input_read(void *buf, uint32_t len);

#endif
