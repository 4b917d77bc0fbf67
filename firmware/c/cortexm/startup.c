/* Startup code of the Cortex-M4F targets: vector table, reset handler (FPU on first, .data copy, .bss zero, stack
 * painting, main), fault handlers, and the stack high-water scan. Memory symbols come from nrf52840.ld.
 *
 * The reset handler is a naked assembly stub that enables the FPU (CPACR CP10/CP11 full access) before any C code
 * runs: with -mfloat-abi=hard the compiler may use VFP registers anywhere, and an FPU instruction with the FPU off
 * faults (UsageFault NOCP) on silicon and in QEMU alike. */
#include <stdint.h>
#include <string.h>

#include "cortexm.h"
#include "platform.h"

extern uint32_t __data_start__, __data_end__, __data_load__;
extern uint32_t __bss_start__, __bss_end__;
extern uint32_t __stack_limit, __stack_top, __stack_size;

extern int main(void);
extern void _exit(int status) __attribute__((noreturn));

void Reset_Handler(void);
void Default_Handler(void);
void reset_c(void) __attribute__((noreturn, used));

/* --- faults ------------------------------------------------------------------------------------------------- */

/* An unexpected exception: report it as a JSON line through the board's platform and exit with status
 * 128 + exception number (weak: a program may install its own). */
static void put_hex(char *dst, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 7; i >= 0; i--) {
        dst[i] = digits[v & 0xFu];
        v >>= 4;
    }
}

__attribute__((weak)) void cm_fault_hook(uint32_t ipsr, const uint32_t *frame)
{
    char line[] = "{\"event\":\"fault\",\"ipsr\":\"0x________\",\"pc\":\"0x________\"}\n";
    put_hex(line + 27, ipsr);
    put_hex(line + 45, frame[6]);
    plat_write(line, sizeof line - 1);
    plat_exit((int)(128 + (ipsr & 0xFFu)));
}

/* Every unexpected exception lands here: pass IPSR and the stacked frame (MSP or PSP per EXC_RETURN bit 2). */
__attribute__((naked)) void Default_Handler(void)
{
    __asm volatile(
        "tst   lr, #4          \n"
        "ite   eq              \n"
        "mrseq r1, msp         \n"
        "mrsne r1, psp         \n"
        "mrs   r0, ipsr        \n"
        "b     cm_fault_hook   \n");
}

#define ALIAS(name) void name(void) __attribute__((weak, alias("Default_Handler")))
ALIAS(NMI_Handler);
ALIAS(HardFault_Handler);
ALIAS(MemManage_Handler);
ALIAS(BusFault_Handler);
ALIAS(UsageFault_Handler);
ALIAS(SVC_Handler);
ALIAS(DebugMon_Handler);
ALIAS(PendSV_Handler);
ALIAS(SysTick_Handler);

/* --- vector table: 16 system entries + the 48 nRF52840 interrupts ------------------------------------------- */

#define N_IRQ 48
typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t dse_vector_table[16 + N_IRQ] = {
    (vector_t)(uintptr_t)&__stack_top,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    [16 ... 16 + N_IRQ - 1] = Default_Handler,
};

/* --- reset -------------------------------------------------------------------------------------------------- */

__attribute__((naked)) void Reset_Handler(void)
{
    __asm volatile(
        "ldr   r0, =0xE000ED88 \n" /* SCB->CPACR */
        "ldr   r1, [r0]        \n"
        "orr   r1, r1, #0xF00000 \n" /* CP10, CP11: full access */
        "str   r1, [r0]        \n"
        "dsb                   \n"
        "isb                   \n"
        "ldr   r0, =__stack_top \n"
        "msr   msp, r0         \n"
        "b     reset_c         \n"
        ".ltorg                \n");
}

void reset_c(void)
{
    /* Plain word loops (no library calls before .data/.bss exist). */
    uint32_t *src = &__data_load__;
    uint32_t *dst = &__data_start__;
    while (dst < &__data_end__) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start__; dst < &__bss_end__; dst++) {
        *dst = 0;
    }

    /* Paint the stack region from its limit up to just below the current stack pointer. */
    uint32_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    volatile uint32_t *p = &__stack_limit;
    while ((uint32_t)(uintptr_t)p < sp - 16u) {
        *p++ = CM_STACK_PAINT;
    }

    _exit(main());
}

/* --- stack high-water mark ---------------------------------------------------------------------------------- */

int32_t cm_stack_size(void)
{
    return (int32_t)((uintptr_t)&__stack_top - (uintptr_t)&__stack_limit);
}

int32_t cm_stack_used(void)
{
    const volatile uint32_t *p = &__stack_limit;
    const volatile uint32_t *top = &__stack_top;
    while (p < top && *p == CM_STACK_PAINT) {
        p++;
    }
    return (int32_t)((uintptr_t)top - (uintptr_t)p);
}
