/* LD_PRELOAD shim for server-e2e: getrandom fails with ENOSYS, as it does
 * under a seccomp filter that does not know the system call. */
#include <errno.h>
#include <sys/types.h>

ssize_t getrandom(void *buf, size_t n, unsigned int flags);

ssize_t getrandom(void *buf, size_t n, unsigned int flags)
{
    (void)buf;
    (void)n;
    (void)flags;
    errno = ENOSYS;
    return -1;
}
