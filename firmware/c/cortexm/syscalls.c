/* Minimal system calls for newlib-nano on the Cortex-M4F targets (link with --specs=nano.specs -nostartfiles, no
 * nosys/rdimon): a bounded _sbrk with a high-water mark, _exit via the board's plat_exit, and _write to the board's
 * output channel (plat_write) so that a stray printf still reaches the host. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "../platform.h"
#include "cortexm.h"

#undef errno
extern int errno;

extern char __heap_start, __heap_limit;

static char *heap_brk;        /* current break; NULL until the first call */
static uint32_t heap_peak;    /* bytes handed out at most */

void *_sbrk(ptrdiff_t incr)
{
    if (heap_brk == NULL) {
        heap_brk = &__heap_start;
    }
    char *prev = heap_brk;
    if (incr > 0 ? (size_t)(&__heap_limit - heap_brk) < (size_t)incr : (size_t)(heap_brk - &__heap_start) < (size_t)-incr) {
        errno = ENOMEM;
        return (void *)-1;
    }
    heap_brk += incr;
    uint32_t used = (uint32_t)(heap_brk - &__heap_start);
    if (used > heap_peak) {
        heap_peak = used;
    }
    return prev;
}

int32_t cm_heap_used(void)
{
    return (int32_t)heap_peak;
}

void _exit(int status)
{
    plat_exit(status);
}

int _write(int fd, const char *buf, int len)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    plat_write(buf, (size_t)len);
    return len;
}

int _read(int fd, char *buf, int len)
{
    (void)fd;
    (void)buf;
    (void)len;
    return 0;
}

int _close(int fd)
{
    (void)fd;
    return -1;
}

int _lseek(int fd, int offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    return 0;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    return fd <= 2;
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void)
{
    return 1;
}
