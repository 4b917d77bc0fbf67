/* platform.h for the real board nrf52840dk (nRF52840 SoC, Cortex-M4F at 64 MHz), driven by a debug probe:
 *
 *  - output: a SEGGER-RTT-compatible control block written here (id "SEGGER RTT", one up buffer; one down buffer
 *    "Input" in the validation build (DSE_HARNESS), none in the deployed image),
 *    in RAM at the symbol _SEGGER_RTT. The host (firmware/boards/nrf52840dk.py, through pyOCD) finds it by the
 *    symbol's address in the ELF, polls WrOff and advances RdOff. Two modes (DSE_RTT_MODE):
 *      DSE_RTT_BLOCK (default): wait while the buffer is full, at most DSE_RTT_TIMEOUT_CYCLES per write; after a
 *        timeout (no host reading) the rest of the run drops what does not fit, so the board never hangs;
 *      DSE_RTT_SKIP: never wait; a write that does not fit whole is dropped (and counted in dse_rtt_dropped).
 *    Output happens outside the measured phases (the harness prints between markers), so waiting costs no cycles
 *    in the figures.
 *  - input (DSE_HARNESS): the host writes the inputs file into down buffer 0 (WrOff its, RdOff ours) while the
 *    firmware runs; plat_input_read waits for bytes at most DSE_RTT_TIMEOUT_CYCLES since the last one arrived
 *    (without a cycle counter: DSE_RTT_INPUT_SPINS polls), then gives up (host gone: the harness reports it).
 *  - cycles: DWT->CYCCNT (DEMCR.TRCENA, DWT_CTRL.CYCCNTENA), extended to 64 bits: SysTick fires every 2^24 cycles
 *    and folds the 32-bit counter into a 64-bit one, so phases longer than 2^32 cycles (67 s) still count right.
 *  - stack and heap high-water marks as on the emulated board (startup.c paints the stack, syscalls.c tracks _sbrk).
 *  - exit: flush the up buffer (bounded wait), store the status in dse_exit_status, then BKPT when a debugger is
 *    attached (DHCSR.C_DEBUGEN: the core halts and the host sees it), otherwise sleep forever.
 *
 * Not yet run on silicon by this project (see README, "Validating picks on a board").
 */
#include <stddef.h>
#include <stdint.h>

#include "../platform.h"
#include "cortexm.h"

#define DSE_RTT_SKIP 0
#define DSE_RTT_BLOCK 1
#ifndef DSE_RTT_MODE
#define DSE_RTT_MODE DSE_RTT_BLOCK
#endif
#ifndef DSE_RTT_BUFFER_SIZE
#define DSE_RTT_BUFFER_SIZE 1024u
#endif
#ifndef DSE_RTT_TIMEOUT_CYCLES
#define DSE_RTT_TIMEOUT_CYCLES (2u * 64000000u) /* 2 s at 64 MHz per blocked write */
#endif
#ifndef DSE_RTT_DOWN_SIZE
#define DSE_RTT_DOWN_SIZE 4096u
#endif
#ifndef DSE_RTT_INPUT_SPINS
#define DSE_RTT_INPUT_SPINS 50000000u
#endif
#ifndef DSE_NRF_ICACHE
#define DSE_NRF_ICACHE 1 /* NVMC ICACHECNF.CACHEEN, as Nordic's SDKs enable it */
#endif

/* --- registers ------------------------------------------------------------------------------------------------ */
#define REG(addr) (*(volatile uint32_t *)(addr))
#define SCB_CPACR REG(0xE000ED88u)
#define CORE_DHCSR REG(0xE000EDF0u)
#define CORE_DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SCB_SHPR3 REG(0xE000ED20u)
#define NRF_NVMC_ICACHECNF REG(0x4001E540u)

#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CTRL_NOCYCCNT (1u << 25)
#define DHCSR_C_DEBUGEN (1u << 0)

static inline void dmb(void)
{
    __asm volatile("dmb" ::: "memory");
}

/* --- RTT control block (layout of SEGGER_RTT_CB with one up buffer and no down buffer) ------------------------- */
typedef struct {
    const char *name;
    char *buffer;
    uint32_t size;
    volatile uint32_t wr_off; /* written by the target */
    volatile uint32_t rd_off; /* written by the host */
    uint32_t flags;
} dse_rtt_up_t;

#ifdef DSE_HARNESS
#define DSE_RTT_DOWN_BUFFERS 1
#else
#define DSE_RTT_DOWN_BUFFERS 0
#endif

typedef struct {
    char id[16];
    int32_t max_up;
    int32_t max_down;
    dse_rtt_up_t up[1];
#if DSE_RTT_DOWN_BUFFERS
    dse_rtt_up_t down[DSE_RTT_DOWN_BUFFERS]; /* same descriptor layout; here the host writes wr_off */
#endif
} dse_rtt_cb_t;

/* In .bss: zero at reset, so a host polling the id never sees a previous run's block once startup has run. */
__attribute__((used, aligned(4))) dse_rtt_cb_t _SEGGER_RTT;
static char rtt_buffer[DSE_RTT_BUFFER_SIZE] __attribute__((aligned(4)));
volatile uint32_t dse_rtt_dropped;  /* bytes dropped (buffer full, no host reading) */
volatile int32_t dse_exit_status = -1; /* set by plat_exit; the host may read it by symbol */
static int rtt_host_gone;            /* a blocking write timed out: stop waiting for the rest of the run */
#if DSE_RTT_DOWN_BUFFERS
static char rtt_down_buffer[DSE_RTT_DOWN_SIZE] __attribute__((aligned(4)));
#endif

static void rtt_init(void)
{
    _SEGGER_RTT.max_up = 1;
    _SEGGER_RTT.max_down = DSE_RTT_DOWN_BUFFERS;
#if DSE_RTT_DOWN_BUFFERS
    _SEGGER_RTT.down[0].name = "Input";
    _SEGGER_RTT.down[0].buffer = rtt_down_buffer;
    _SEGGER_RTT.down[0].size = DSE_RTT_DOWN_SIZE;
    _SEGGER_RTT.down[0].wr_off = 0;
    _SEGGER_RTT.down[0].rd_off = 0;
    _SEGGER_RTT.down[0].flags = 0u;
#endif
    _SEGGER_RTT.up[0].name = "Terminal";
    _SEGGER_RTT.up[0].buffer = rtt_buffer;
    _SEGGER_RTT.up[0].size = DSE_RTT_BUFFER_SIZE;
    _SEGGER_RTT.up[0].wr_off = 0;
    _SEGGER_RTT.up[0].rd_off = 0;
    _SEGGER_RTT.up[0].flags = DSE_RTT_MODE == DSE_RTT_BLOCK ? 2u : 0u; /* SEGGER: BLOCK_IF_FIFO_FULL / NO_BLOCK_SKIP */
    dmb();
    /* The id last (and built at run time, back to front, as SEGGER does), so the host finds a complete block and
     * no copy of the id in the .data image. */
    static const char id[] = "SEGGER RTT";
    for (int i = (int)sizeof id - 2; i >= 0; i--) {
        _SEGGER_RTT.id[i] = id[i];
    }
    dmb();
}

static uint32_t rtt_free(const dse_rtt_up_t *up)
{
    uint32_t rd = up->rd_off, wr = up->wr_off;
    return rd > wr ? rd - wr - 1u : up->size - (wr - rd) - 1u;
}

static void rtt_put(dse_rtt_up_t *up, const char *text, uint32_t len)
{
    uint32_t wr = up->wr_off;
    while (len > 0) {
        uint32_t chunk = up->size - wr;
        if (chunk > len) {
            chunk = len;
        }
        for (uint32_t i = 0; i < chunk; i++) {
            up->buffer[wr + i] = text[i];
        }
        wr += chunk;
        if (wr == up->size) {
            wr = 0;
        }
        text += chunk;
        len -= chunk;
    }
    dmb(); /* the bytes before the offset that publishes them */
    up->wr_off = wr;
}

/* --- cycles ---------------------------------------------------------------------------------------------------- */
static volatile uint32_t cyc_last;
static volatile uint32_t cyc_high;
static int cycles_ok;

static uint64_t cycles_fold(void)
{
    /* Called with SysTick unable to preempt (from its handler, or with interrupts masked). */
    uint32_t now = DWT_CYCCNT;
    if (now < cyc_last) {
        cyc_high++;
    }
    cyc_last = now;
    return ((uint64_t)cyc_high << 32) | now;
}

void SysTick_Handler(void)
{
    (void)cycles_fold();
}

static void cycles_init(void)
{
    CORE_DEMCR |= DEMCR_TRCENA;
    if (DWT_CTRL & DWT_CTRL_NOCYCCNT) {
        cycles_ok = 0;
        return;
    }
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    cyc_last = 0;
    cyc_high = 0;
    /* SysTick on the core clock every 2^24 cycles, lowest priority: folds the counter well before it wraps. */
    SCB_SHPR3 |= 0xFFu << 24;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 0x7u; /* CLKSOURCE = core, TICKINT, ENABLE */
    uint32_t a = DWT_CYCCNT;
    for (volatile int i = 0; i < 8; i++) {
    }
    cycles_ok = DWT_CYCCNT != a;
}

/* --- platform.h ------------------------------------------------------------------------------------------------ */
void plat_init(void)
{
    SCB_CPACR |= 0xFu << 20; /* FPU (already on from Reset_Handler; harmless) */
    __asm volatile("dsb\n isb" ::: "memory");
#if DSE_NRF_ICACHE
    NRF_NVMC_ICACHECNF = 1u;
#endif
    rtt_init();
    cycles_init();
}

void plat_write(const char *text, size_t len)
{
    dse_rtt_up_t *up = &_SEGGER_RTT.up[0];
    if (up->size == 0) {
        rtt_init();
    }
    while (len > 0) {
        uint32_t want = len > up->size - 1u ? up->size - 1u : (uint32_t)len; /* a line longer than the buffer: pieces */
        uint32_t free = rtt_free(up);
        if (free < want && DSE_RTT_MODE == DSE_RTT_BLOCK && !rtt_host_gone) {
            uint32_t start = DWT_CYCCNT;
            while ((free = rtt_free(up)) < want) {
                if (!cycles_ok || DWT_CYCCNT - start > DSE_RTT_TIMEOUT_CYCLES) {
                    rtt_host_gone = 1;
                    break;
                }
            }
        }
        if (free < want) {
            dse_rtt_dropped += (uint32_t)len;
            return;
        }
        rtt_put(up, text, want);
        text += want;
        len -= want;
    }
}

#if DSE_RTT_DOWN_BUFFERS
int plat_input_open(void)
{
    return _SEGGER_RTT.down[0].size ? 0 : -1;
}

uint32_t plat_input_read(void *buf, uint32_t len)
{
    dse_rtt_up_t *down = &_SEGGER_RTT.down[0];
    char *out = (char *)buf;
    uint32_t done = 0;
    while (done < len) {
        uint32_t start = DWT_CYCCNT, spins = 0;
        uint32_t wr;
        while ((wr = down->wr_off) == down->rd_off) { /* empty: wait for the host, bounded */
            if (cycles_ok ? DWT_CYCCNT - start > DSE_RTT_TIMEOUT_CYCLES : ++spins > DSE_RTT_INPUT_SPINS) {
                return done;
            }
        }
        dmb(); /* the host's bytes before the offset that published them */
        uint32_t rd = down->rd_off;
        while (rd != wr && done < len) {
            out[done++] = down->buffer[rd];
            rd = rd + 1u == down->size ? 0u : rd + 1u;
        }
        dmb();
        down->rd_off = rd;
    }
    return done;
}
#endif

volatile uint32_t dse_last_marker;

__attribute__((noinline, noipa, used)) void plat_phase_marker(uint32_t k)
{
    dse_last_marker = k;
}

int plat_has_cycles(void)
{
    return cycles_ok;
}

uint64_t plat_cycles(void)
{
    if (!cycles_ok) {
        return 0;
    }
    uint32_t primask;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    uint64_t value = cycles_fold();
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
    return value;
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
    dse_rtt_up_t *up = &_SEGGER_RTT.up[0];
    uint32_t start = DWT_CYCCNT;
    /* flush: wait until the host has read everything (bounded: a board without a host must not hang here) */
    while (up->size != 0 && up->rd_off != up->wr_off && !rtt_host_gone && cycles_ok &&
           DWT_CYCCNT - start <= DSE_RTT_TIMEOUT_CYCLES) {
    }
    dse_exit_status = status;
    SYST_CSR = 0;
    dmb();
    if (CORE_DHCSR & DHCSR_C_DEBUGEN) {
        __asm volatile("bkpt 0x00");
    }
    for (;;) {
        __asm volatile("wfi");
    }
}
