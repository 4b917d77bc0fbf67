/* insncount: a TCG plugin for qemu-system-arm 7.x (plugin API version 1) counting retired guest instructions.
 *
 * Every translated block adds its instruction count to one 64-bit counter with an inline operation when it runs
 * (no helper call, so it costs almost nothing); a callback on the instruction at the marker address appends the
 * current counter value to the output file each time that instruction executes. At exit, the total is written.
 *
 *   -plugin libinsncount.so,marker=0x<address of plat_phase_marker>,out=<file>[,blocks=<file>]
 *
 * Output lines: "marker <count>" (in execution order), then "total <count>".
 *
 * With blocks=FILE, every translated block also gets its own execution counter (one more inline add per block
 * execution; keyed by start address, instruction count and end address, so a block translated again after a
 * cache flush keeps counting into the same counter). The block file has the same "marker <count>" / "total
 * <count>" header lines, each followed by the blocks whose cumulative execution count changed since the previous
 * header: "block 0x<start> <instructions> 0x<end> <executions>" (end = address after the last instruction as the
 * plugin API reports it: 2 bytes late when QEMU peeked at the next halfword near a page end).
 * Counts per phase are differences between headers; sum(executions x instructions) over a phase reproduces the
 * phase's instruction count exactly, because both counters are bumped at the same point (block entry).
 * Counts are exact for straight-line guest code: a block is counted when it starts, and a block is only cut short
 * by a synchronous exception (semihosting traps end their block) or an I/O access replayed under -icount, neither
 * of which happens inside the measured phases. The counter value at a marker includes the marker's own block,
 * which cancels in differences between markers.
 *
 * Debian ships no plugin header, so the few API declarations used here are written out below (API version 1). */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the subset of <qemu-plugin.h> (version 1) this plugin uses ---------------------------------------------- */
#define PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through */
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_outs(const char *string);

PLUGIN_EXPORT int qemu_plugin_version = 1;
/* ------------------------------------------------------------------------------------------------------------ */

static uint64_t insn_count;    /* single vCPU (the Cortex-M4 machines have one) */
static uint64_t marker_addr;   /* Thumb bit cleared */
static bool have_marker;
static uint64_t marker_hits;
static FILE *out;
static FILE *blocks_out; /* NULL: no per-block counting */

/* --- per-block execution counters ---------------------------------------------------------------------------- */
struct block {
    uint64_t count;  /* executions, bumped by an inline add at block entry */
    uint64_t dumped; /* count at the last dump */
    uint64_t pc, end;
    uint64_t n;
};

static struct block **table; /* open addressing, power-of-two size; entries never move (the inline ops hold &count) */
static size_t table_size, n_blocks;
static struct block **order; /* blocks in first-translation order, for deterministic dumps */
static size_t order_cap;

static size_t slot_of(uint64_t pc, uint64_t n, uint64_t end)
{
    uint64_t h = (pc * 0x9E3779B97F4A7C15ull) ^ (n * 0xC2B2AE3D27D4EB4Full) ^ end;
    return (size_t)(h ^ (h >> 29)) & (table_size - 1);
}

static void table_grow(void)
{
    size_t old_size = table_size;
    struct block **old = table;
    table_size = old_size ? 2 * old_size : 4096;
    table = calloc(table_size, sizeof *table);
    if (table == NULL) {
        fprintf(stderr, "insncount: out of memory\n");
        abort();
    }
    for (size_t i = 0; i < old_size; i++) {
        if (old[i] != NULL) {
            size_t j = slot_of(old[i]->pc, old[i]->n, old[i]->end);
            while (table[j] != NULL) {
                j = (j + 1) & (table_size - 1);
            }
            table[j] = old[i];
        }
    }
    free(old);
}

static struct block *block_for(uint64_t pc, uint64_t n, uint64_t end)
{
    if (2 * (n_blocks + 1) > table_size) {
        table_grow();
    }
    size_t j = slot_of(pc, n, end);
    for (; table[j] != NULL; j = (j + 1) & (table_size - 1)) {
        struct block *b = table[j];
        if (b->pc == pc && b->n == n && b->end == end) {
            return b;
        }
    }
    if (n_blocks == order_cap) {
        order_cap = order_cap ? 2 * order_cap : 4096;
        order = realloc(order, order_cap * sizeof *order);
    }
    struct block *b = calloc(1, sizeof *b);
    if (b == NULL || order == NULL) {
        fprintf(stderr, "insncount: out of memory\n");
        abort();
    }
    b->pc = pc;
    b->n = n;
    b->end = end;
    table[j] = b;
    order[n_blocks++] = b;
    return b;
}

/* header line, then every block whose count changed since the last dump */
static void dump_blocks(const char *header)
{
    fprintf(blocks_out, "%s %" PRIu64 "\n", header, insn_count);
    for (size_t i = 0; i < n_blocks; i++) {
        struct block *b = order[i];
        if (b->count != b->dumped) {
            fprintf(blocks_out, "block 0x%" PRIx64 " %" PRIu64 " 0x%" PRIx64 " %" PRIu64 "\n", b->pc, b->n, b->end,
                    b->count);
            b->dumped = b->count;
        }
    }
    fflush(blocks_out);
}
/* ------------------------------------------------------------------------------------------------------------ */

static void on_marker(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    marker_hits++;
    fprintf(out, "marker %" PRIu64 "\n", insn_count);
    fflush(out);
    if (blocks_out != NULL) {
        dump_blocks("marker");
    }
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, (uint64_t)n);
    if (blocks_out != NULL && n > 0) {
        struct qemu_plugin_insn *last = qemu_plugin_tb_get_insn(tb, n - 1);
        uint64_t end = qemu_plugin_insn_vaddr(last) + qemu_plugin_insn_size(last);
        struct block *b = block_for(qemu_plugin_tb_vaddr(tb), (uint64_t)n, end);
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->count, 1);
    }
    if (!have_marker) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if ((qemu_plugin_insn_vaddr(insn) & ~(uint64_t)1) == marker_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void on_exit_cb(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    fprintf(out, "total %" PRIu64 "\n", insn_count);
    fflush(out);
    if (out != stderr) {
        fclose(out);
    }
    out = NULL;
    if (blocks_out != NULL) {
        dump_blocks("total");
        fclose(blocks_out);
        blocks_out = NULL;
    }
}

PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    const char *path = NULL;
    const char *blocks_path = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "arg=", 4) == 0) { /* the older "-plugin lib,arg=key=value" form */
            a += 4;
        }
        if (strncmp(a, "marker=", 7) == 0) {
            char *end;
            marker_addr = strtoull(a + 7, &end, 0) & ~(uint64_t)1;
            if (*end != '\0' || end == a + 7) {
                qemu_plugin_outs("insncount: bad marker address\n");
                return -1;
            }
            have_marker = true;
        } else if (strncmp(a, "out=", 4) == 0) {
            path = a + 4;
        } else if (strncmp(a, "blocks=", 7) == 0) {
            blocks_path = a + 7;
        } else {
            qemu_plugin_outs("insncount: unknown argument (expected marker=ADDR, out=FILE, blocks=FILE)\n");
            return -1;
        }
    }
    out = path ? fopen(path, "w") : stderr;
    if (out == NULL) {
        qemu_plugin_outs("insncount: cannot open the output file\n");
        return -1;
    }
    if (blocks_path != NULL && (blocks_out = fopen(blocks_path, "w")) == NULL) {
        qemu_plugin_outs("insncount: cannot open the blocks file\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
