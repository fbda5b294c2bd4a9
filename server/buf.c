/* Growing arrays (buf.h). */
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2)
            return -1;
        nc *= 2;
    }
    if (elem && nc > SIZE_MAX / elem)
        return -1;
    /* The pointer is read and written as bytes: pp may be any T **. */
    void *p;
    memcpy(&p, pp, sizeof p);
    void *q = realloc(p, nc * elem);
    if (!q)
        return -1;
    memcpy(pp, &q, sizeof q);
    *cap = nc;
    return 0;
}
