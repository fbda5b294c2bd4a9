/* Data-parallel training over several processes: the transport the program
 * supplies (charrnn-train implements it with MPI) and the deterministic
 * collectives the library builds on it.
 *
 * The library never links a message-passing library: it sees only these three
 * point-to-point and broadcast operations on bytes. Every collective below
 * has a fixed order of floating-point operations that does not depend on the
 * number of processes, so R processes give the same bits as one.
 *
 * Every process of a job must call the collectives in the same order (they
 * are matched by program order, not by tags). */
#ifndef CHARRNN_COMM_H
#define CHARRNN_COMM_H

#include <stddef.h>
#include <stdint.h>

typedef struct charrnn_comm {
    int rank, size;           /* this process, 0..size-1; size >= 1 */
    const char *const *hosts; /* (size) host name of each rank, for messages */
    void *ctx;
    /* Each returns 0 on success. A transport that cannot deliver should end
     * the whole job itself (MPI's default error handler does): a peer waiting
     * for this process would otherwise wait for ever. On a non-zero return the
     * library stops with an error. Messages between two ranks arrive in the
     * order they were sent. */
    int (*send)(void *ctx, int to, const void *buf, size_t bytes);
    int (*recv)(void *ctx, int from, void *buf, size_t bytes);
    int (*bcast)(void *ctx, int root, void *buf, size_t bytes); /* root's bytes to every rank */
} charrnn_comm;

/* The left fold of a sum over shards, continued across ranks:
 * total = ((p_0 + p_1) + p_2) + ... where each rank holds a consecutive range
 * of the parts, ranks in rank order. On rank 0, acc holds p_0 on entry and
 * parts[] are its remaining parts; on the other ranks acc's content on entry
 * is ignored (it receives the prefix sum from rank - 1) and parts[] are all of
 * its parts. The vector goes along the chain of ranks in chunks (rank r adds
 * chunk k while rank r+1 adds chunk k-1), then the total goes round from the
 * last rank through ranks 0, 1, ... in the same chunks: on return every
 * rank's acc holds the same bits as one process adding all parts in order.
 * Only send and recv are used. n floats. Returns 0 or -1 (transport failure). */
int charrnn_comm_chain_sum(const charrnn_comm *c, float *acc, const float *const *parts, int nparts,
                           size_t n);

/* Every rank contributes `bytes` bytes; on return all (size * bytes) holds
 * rank 0's contribution first, then rank 1's... on every rank. */
int charrnn_comm_allgather(const charrnn_comm *c, const void *mine, void *all, size_t bytes);

/* Logical OR of a flag over all ranks; the same result on every rank. */
int charrnn_comm_any(const charrnn_comm *c, int *flag);

/* A 64-bit digest of n floats' bits (FNV-1a over their 32-bit words): equal arrays
 * give equal digests; used to compare parameters across ranks. */
uint64_t charrnn_comm_digest(const float *x, size_t n);

#endif
