/* The deterministic collectives of data-parallel training over a transport
 * the program supplies (include/charrnn/comm.h). */
#include "charrnn/comm.h"

#include <stdlib.h>
#include <string.h>

/* Floats per chunk of the chain. The chain takes about (chunks + R - 1)
 * chunk times: small chunks let R ranks work at once, but each message also
 * costs a latency (microseconds on one machine, tens on a network). n / 2R
 * keeps the pipeline's fill under a third of the time, between 64 KiB and
 * 1 MiB per message. The chunking does not change the bits: every element
 * still sees the same additions in the same order. */
static size_t chain_chunk(size_t n, int size)
{
    const size_t lo = (size_t)1 << 14, hi = (size_t)1 << 18, c = n / (2 * (size_t)size);
    return c < lo ? lo : c > hi ? hi : c;
}

int charrnn_comm_chain_sum(const charrnn_comm *c, float *acc, const float *const *parts, int nparts,
                           size_t n)
{
    const size_t chunk = chain_chunk(n, c->size);
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        const size_t len = n - i0 < chunk ? n - i0 : chunk;
        float *a = acc + i0;
        if (c->rank > 0 && c->recv(c->ctx, c->rank - 1, a, len * sizeof *a))
            return -1;
        for (int k = 0; k < nparts; k++) {
            const float *p = parts[k] + i0;
            for (size_t i = 0; i < len; i++)
                a[i] += p[i];
        }
        if (c->rank < c->size - 1 && c->send(c->ctx, c->rank + 1, a, len * sizeof *a))
            return -1;
    }
    /* The total goes round from the last rank to rank 0, 1, ... R-2, in the
     * same chunks: point-to-point messages that each complete in a few
     * steps of the transport, pipelined like the chain. */
    const int last = c->size - 1;
    for (size_t i0 = 0; c->size > 1 && i0 < n; i0 += chunk) {
        const size_t len = n - i0 < chunk ? n - i0 : chunk;
        float *a = acc + i0;
        if (c->rank == last) {
            if (c->send(c->ctx, 0, a, len * sizeof *a))
                return -1;
        } else if (c->recv(c->ctx, c->rank == 0 ? last : c->rank - 1, a, len * sizeof *a) ||
                   (c->rank < last - 1 && c->send(c->ctx, c->rank + 1, a, len * sizeof *a))) {
            return -1;
        }
    }
    return 0;
}

int charrnn_comm_allgather(const charrnn_comm *c, const void *mine, void *all, size_t bytes)
{
    char *dst = all;
    memmove(dst + (size_t)c->rank * bytes, mine, bytes);
    if (c->rank == 0) {
        for (int r = 1; r < c->size; r++)
            if (c->recv(c->ctx, r, dst + (size_t)r * bytes, bytes))
                return -1;
    } else if (c->send(c->ctx, 0, mine, bytes)) {
        return -1;
    }
    return c->size > 1 && c->bcast(c->ctx, 0, all, (size_t)c->size * bytes) ? -1 : 0;
}

int charrnn_comm_any(const charrnn_comm *c, int *flag)
{
    if (c->size == 1)
        return 0;
    int *all = calloc((size_t)c->size, sizeof *all), mine = *flag != 0;
    if (!all || charrnn_comm_allgather(c, &mine, all, sizeof mine)) {
        free(all);
        return -1;
    }
    *flag = 0;
    for (int r = 0; r < c->size; r++)
        *flag |= all[r];
    free(all);
    return 0;
}

uint64_t charrnn_comm_digest(const float *x, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t w;
        memcpy(&w, &x[i], sizeof w);
        h ^= w;
        h *= 0x100000001b3ULL;
    }
    return h;
}
