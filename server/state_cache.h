/* The prefix-state cache: the snapshot (charrnn_stream_snapshot: a stream's
 * recurrent state and next-character logits) after a text, keyed by the
 * model version (the store's load_id: unique across models) and the exact text, so that a request whose prime starts
 * with a text seen before reads only what follows it.
 *
 * Keys are token sequences of one version (the version fixes the
 * vocabulary), compared in full on every hit: a hash only finds candidates,
 * so a collision costs a comparison, never a wrong state. Hashes are seeded
 * at random per cache, so a client cannot aim collisions at one bucket.
 *
 * Memory: every entry is charged its tokens, its snapshot and its
 * bookkeeping; inserting past the budget evicts the least recently used
 * entries (a hit refreshes an entry). An entry larger than the whole budget
 * is not kept.
 *
 * Thread safety: every function may be called from any thread (one mutex;
 * a lookup or insert copies one snapshot under it, a few KB). */
#ifndef CHARRNN_SERVE_STATE_CACHE_H
#define CHARRNN_SERVE_STATE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct state_cache state_cache;

/* A cache of at most budget bytes. NULL on allocation failure or a budget of
 * 0; every function below accepts a NULL cache (a cache that keeps nothing). */
state_cache *state_cache_create(size_t budget);
void state_cache_free(state_cache *c);

/* The longest prefix of tok[0..n) cached for version, of at most max_k
 * tokens: returns its length k (0 when none) and copies its snapshot
 * (nfloats floats) into out. Counts a hit or a miss. */
size_t state_cache_lookup(state_cache *c, uint64_t version, const uint16_t *tok, size_t n,
                          size_t max_k, float *out, size_t nfloats);

/* Keeps the snapshot after tok[0..n) (n >= 1) for version, whose model is
 * name (for state_cache_retire). An existing entry of the same key is only
 * refreshed. Returns 0, or -1 when not kept (too large, out of memory). */
int state_cache_insert(state_cache *c, uint64_t version, const char *name, const uint16_t *tok,
                       size_t n, const float *snap, size_t nfloats);

/* Drops every entry of model name of a version below floor, and refuses
 * such entries from now on: a reloaded or removed model's states are never
 * read by a new request (in-flight requests of the old version may still
 * finish; what they would keep is not kept). The version here is the
 * store's load_id, which grows with every load (store.h), so floor is the
 * new load_id on a reload, the removed one + 1 on a removal; a reload of
 * unchanged bytes keeps its load_id, and so its states. Returns 0, or -1 out of memory (the entries are dropped
 * all the same). */
int state_cache_retire(state_cache *c, const char *name, uint64_t floor);

typedef struct state_cache_stats {
    uint64_t hits, misses;   /* lookups that found a prefix, and that did not */
    uint64_t hit_chars;      /* characters that hits saved reading */
    uint64_t inserts;        /* entries added */
    uint64_t evictions;      /* entries dropped for room */
    uint64_t retired;        /* entries dropped with their model version */
    uint64_t entries, bytes; /* now */
    uint64_t budget;
} state_cache_stats;
/* Zeroes for a NULL cache. */
void state_cache_stats_get(state_cache *c, state_cache_stats *out);

#endif
