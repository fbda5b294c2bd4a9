/* Bytes from the kernel's random source, for seeds and request ids. */
#ifndef CHARRNN_SERVE_RANDOM_BYTES_H
#define CHARRNN_SERVE_RANDOM_BYTES_H

#include <stddef.h>

/* Fills buf with n random bytes: 0, or -1 (errno set) when getrandom fails
 * other than by an interrupt. Under a seccomp filter that answers ENOSYS it
 * fails every time: callers must not retry it in a loop. */
int random_bytes(void *buf, size_t n);

#endif
