/* Shared helpers of the Cortex-M4F targets (startup.c, syscalls.c), used by the board platforms
 * (platform_qemu.c, platform_nrf52840.c) to implement platform.h. */
#ifndef DSE_CORTEXM_H
#define DSE_CORTEXM_H

#include <stdint.h>

#define CM_STACK_PAINT 0xC5A5C5A5u   /* word written over the whole stack region at reset */

/* Painted-stack high-water mark: bytes between the top of the stack region and the deepest word that no longer
 * holds the paint (startup.c). */
int32_t cm_stack_used(void);
/* Size of the stack region (linker symbol __stack_size) in bytes. */
int32_t cm_stack_size(void);

/* Heap high-water mark: the largest number of bytes _sbrk has handed out (syscalls.c). */
int32_t cm_heap_used(void);

/* Called by every unexpected exception (HardFault, MemManage, BusFault, UsageFault, NMI, stray IRQs) with the
 * active exception number (IPSR) and the stacked exception frame (r0-r3, r12, lr, pc, xpsr). The default (weak)
 * version spins forever; a board platform overrides it, e.g. to report the fault and exit. */
void cm_fault_hook(uint32_t ipsr, const uint32_t *frame);

#endif
