/* One way to grow an array: the server's tables, text buffers and record
 * arrays all double their capacity through buf_reserve, so the overflow check
 * and the failure rule (nothing changes when memory runs out) are written
 * once. */
#ifndef CHARRNN_SERVE_BUF_H
#define CHARRNN_SERVE_BUF_H

#include <stddef.h>

/* Makes room for need elements of elem bytes in the array whose pointer is
 * at pp (any T **, passed as void *) and whose capacity, in elements, is
 * *cap: doubles the capacity (from 16) until it holds need. Returns 0, or -1
 * when out of memory or the size overflows; then neither *pp nor *cap
 * changed. */
int buf_reserve(void *pp, size_t *cap, size_t need, size_t elem);

#endif
