/* The prefix-state cache (state_cache.h): a hash table of entries chained
 * per bucket, and one LRU list through all of them.
 *
 * The hash of a key is a chain over its tokens, h_k = mix(h_{k-1}, t_k),
 * so a lookup hashes every prefix of the prime in one pass and then probes
 * from the longest down: the first entry whose tokens compare equal is the
 * longest cached prefix. */
#include "state_cache.h"

#include "random_bytes.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

typedef struct entry {
    uint64_t hash, version, name_hash;
    size_t n, nfloats, bytes; /* tokens, snapshot floats, what it is charged */
    struct entry *chain;      /* next in the bucket */
    TAILQ_ENTRY(entry) lru;   /* its place in the cache's LRU list */
    struct recs *recs;        /* the records of its last characters, or NULL */
    uint16_t *tok;            /* (n), after the snapshot in the same block */
    float snap[];             /* (nfloats) */
} entry;

/* An entry's records (state_cache_recs) of positions from..n-1 of its key,
 * one block: lp (n - from), then top_lp and top_id ((n - from) x k each). */
typedef struct recs {
    size_t from, bytes;
    int k;
    float *lp, *top_lp;
    int *top_id;
} recs;

struct state_cache {
    pthread_mutex_t mu;
    size_t budget, bytes;
    entry **bucket;
    size_t nbucket;                  /* a power of two */
    TAILQ_HEAD(lru_list, entry) lru; /* every entry, the most recently used first */
    uint64_t seed;
    state_cache_stats st;
    struct floor {
        uint64_t name_hash, version;
    } * floors; /* per model name: versions below are retired */
    size_t nfloors;
};

/* The retired floor of a name (0: none). Under mu. */
static uint64_t floor_of(const state_cache *c, uint64_t name_hash)
{
    for (size_t i = 0; i < c->nfloors; i++)
        if (c->floors[i].name_hash == name_hash)
            return c->floors[i].version;
    return 0;
}

/* splitmix64's finalizer: every input bit reaches every output bit. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t hash_step(uint64_t h, uint16_t t)
{
    return mix(h + 0x9E3779B97F4A7C15ull + t);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001B3ull;
    return h;
}

state_cache *state_cache_create(size_t budget)
{
    if (budget == 0)
        return NULL;
    state_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    TAILQ_INIT(&c->lru);
    /* About one bucket per 8 KB of budget (a 2x512 LSTM snapshot), 1K..1M. */
    c->nbucket = 1024;
    while (c->nbucket < (1u << 20) && c->nbucket * 8192 < budget)
        c->nbucket *= 2;
    c->bucket = calloc(c->nbucket, sizeof *c->bucket);
    if (!c->bucket) {
        free(c);
        return NULL;
    }
    if (random_bytes(&c->seed, sizeof c->seed) != 0) {
        /* No random source: the clock still keeps the hashes unknown to
         * clients that cannot see the start time to the nanosecond. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        c->seed = mix((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
    }
    c->budget = budget;
    c->st.budget = budget;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void state_cache_free(state_cache *c)
{
    if (!c)
        return;
    for (entry *e = TAILQ_FIRST(&c->lru), *next; e; e = next) {
        next = TAILQ_NEXT(e, lru);
        free(e->recs);
        free(e);
    }
    free(c->bucket);
    free(c->floors);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* The hash of the empty key of a version: every key's chain starts there. */
static uint64_t hash_start(const state_cache *c, uint64_t version)
{
    return mix(c->seed ^ version);
}

static uint64_t key_hash(const state_cache *c, uint64_t version, const uint16_t *tok, size_t n)
{
    uint64_t h = hash_start(c, version);
    for (size_t i = 0; i < n; i++)
        h = hash_step(h, tok[i]);
    return h;
}

/* The entry of exactly this key, or NULL. Under mu. */
static entry *find(state_cache *c, uint64_t hash, uint64_t version, const uint16_t *tok, size_t n)
{
    for (entry *e = c->bucket[hash & (c->nbucket - 1)]; e; e = e->chain)
        if (e->hash == hash && e->version == version && e->n == n &&
            memcmp(e->tok, tok, n * sizeof *tok) == 0)
            return e;
    return NULL;
}

/* e becomes the most recently used. */
static void lru_touch(state_cache *c, entry *e)
{
    TAILQ_REMOVE(&c->lru, e, lru);
    TAILQ_INSERT_HEAD(&c->lru, e, lru);
}

/* Unlinks e from everything and frees it. Under mu. */
static void drop(state_cache *c, entry *e)
{
    entry **p = &c->bucket[e->hash & (c->nbucket - 1)];
    while (*p != e)
        p = &(*p)->chain;
    *p = e->chain;
    TAILQ_REMOVE(&c->lru, e, lru);
    c->bytes -= e->bytes;
    c->st.entries--;
    free(e->recs);
    free(e);
}

/* The end of a lookup under mu: counts it, lets go of mu and the prefix
 * hashes h, returns found. */
static size_t lookup_done(state_cache *c, uint64_t *h, size_t found)
{
    if (found) {
        c->st.hits++;
        c->st.hit_chars += found;
    } else {
        c->st.misses++;
    }
    pthread_mutex_unlock(&c->mu);
    free(h);
    return found;
}

size_t state_cache_lookup(state_cache *c, uint64_t version, const uint16_t *tok, size_t n,
                          size_t max_k, float *out, size_t nfloats)
{
    if (!c)
        return 0;
    size_t m = n < max_k ? n : max_k;
    uint64_t *h = m ? malloc(m * sizeof *h) : NULL;
    size_t found = 0;
    if (h) {
        uint64_t x = hash_start(c, version);
        for (size_t i = 0; i < m; i++)
            h[i] = x = hash_step(x, tok[i]);
    }
    pthread_mutex_lock(&c->mu);
    for (size_t k = h ? m : 0; k > 0; k--) {
        entry *e = find(c, h[k - 1], version, tok, k);
        if (e && e->nfloats == nfloats) {
            memcpy(out, e->snap, nfloats * sizeof *out);
            lru_touch(c, e);
            found = k;
            break;
        }
    }
    return lookup_done(c, h, found);
}

/* Records a and b of one key: 1 when a is worth keeping over b (reaches as
 * far back, with as many alternatives, and further in one of them). */
static int recs_better(const recs *a, const recs *b)
{
    return !b || (a->k >= b->k && a->from <= b->from && (a->k > b->k || a->from < b->from));
}

/* Evicts the least recently used entries, never keep, until the cache is
 * within budget. Under mu. */
static void make_room(state_cache *c, const entry *keep)
{
    entry *oldest;
    while (c->bytes > c->budget && (oldest = TAILQ_LAST(&c->lru, lru_list)) && oldest != keep) {
        drop(c, oldest);
        c->st.evictions++;
    }
}

/* Inserts the key with its snapshot and rb (may be NULL; taken over, freed
 * when not kept). */
static int insert(state_cache *c, uint64_t version, const char *name, const uint16_t *tok, size_t n,
                  const float *snap, size_t nfloats, recs *rb)
{
    size_t bytes = sizeof(entry) + nfloats * sizeof(float) + n * sizeof(uint16_t);
    if (!c || n == 0 || bytes + (rb ? rb->bytes : 0) > c->budget) {
        free(rb);
        return -1;
    }
    uint64_t hash = key_hash(c, version, tok, n);
    pthread_mutex_lock(&c->mu);
    entry *e = find(c, hash, version, tok, n);
    if (e) { /* the same text's state is the same bits: keep it, fresher */
        lru_touch(c, e);
        if (rb && recs_better(rb, e->recs)) {
            size_t old = e->recs ? e->recs->bytes : 0;
            free(e->recs);
            e->recs = rb, rb = NULL;
            e->bytes += e->recs->bytes - old;
            c->bytes += e->recs->bytes - old;
            make_room(c, e);
        }
        pthread_mutex_unlock(&c->mu);
        free(rb);
        return 0;
    }
    pthread_mutex_unlock(&c->mu);
    /* Built outside the lock: a copy of a long key is the slow part. Room is
     * made when it goes in, below. */
    e = malloc(bytes);
    if (!e) {
        free(rb);
        return -1;
    }
    e->hash = hash, e->version = version, e->name_hash = name_hash(name);
    e->n = n, e->nfloats = nfloats, e->bytes = bytes + (rb ? rb->bytes : 0);
    e->recs = rb;
    memcpy(e->snap, snap, nfloats * sizeof *snap);
    e->tok = (uint16_t *)(e->snap + nfloats);
    memcpy(e->tok, tok, n * sizeof *tok);
    pthread_mutex_lock(&c->mu);
    if (version < floor_of(c, e->name_hash) || find(c, hash, version, tok, n)) {
        /* retired meanwhile, or another thread kept it (a scored insert
         * racing a plain one loses its records: the next one brings them) */
        pthread_mutex_unlock(&c->mu);
        free(e->recs);
        free(e);
        return 0;
    }
    c->bytes += e->bytes;
    make_room(c, NULL); /* e is not in the LRU list yet */
    entry **b = &c->bucket[hash & (c->nbucket - 1)];
    e->chain = *b;
    *b = e;
    TAILQ_INSERT_HEAD(&c->lru, e, lru);
    c->st.entries++;
    c->st.inserts++;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int state_cache_insert(state_cache *c, uint64_t version, const char *name, const uint16_t *tok,
                       size_t n, const float *snap, size_t nfloats)
{
    return insert(c, version, name, tok, n, snap, nfloats, NULL);
}

int state_cache_insert_scored(state_cache *c, uint64_t version, const char *name,
                              const uint16_t *tok, size_t n, const float *snap, size_t nfloats,
                              const state_cache_recs *r)
{
    if (!c || r->from < 1 || r->from >= n || r->k < 0)
        return -1;
    size_t count = n - r->from, k = (size_t)r->k;
    size_t bytes = sizeof(recs) + count * sizeof(float) * (1 + 2 * k);
    recs *rb = malloc(bytes);
    if (!rb)
        return -1;
    rb->from = r->from, rb->bytes = bytes, rb->k = r->k;
    rb->lp = (float *)(rb + 1);
    rb->top_lp = rb->lp + count;
    rb->top_id = (int *)(rb->top_lp + count * k);
    memcpy(rb->lp, r->lp, count * sizeof *rb->lp);
    if (k) {
        memcpy(rb->top_lp, r->top_lp, count * k * sizeof *rb->top_lp);
        memcpy(rb->top_id, r->top_id, count * k * sizeof *rb->top_id);
    }
    return insert(c, version, name, tok, n, snap, nfloats, rb);
}

size_t state_cache_lookup_scored(state_cache *c, uint64_t version, const uint16_t *tok, size_t n,
                                 size_t max_k, size_t every, int k, float *snap, size_t nfloats,
                                 float *lp, int *top_id, float *top_lp)
{
    if (!c || every == 0 || k < 0)
        return 0;
    size_t m = n < max_k ? n : max_k, nk = m / every;
    uint64_t *h = nk ? malloc(nk * sizeof *h) : NULL;
    if (h) { /* the hash of every checkpoint's prefix, in one pass */
        uint64_t x = hash_start(c, version);
        for (size_t i = 0; i < nk * every; i++) {
            x = hash_step(x, tok[i]);
            if ((i + 1) % every == 0)
                h[i / every] = x;
        }
    }
    const size_t kk = (size_t)k;
    size_t upto = 1; /* records of positions 1..upto-1 copied */
    entry *last = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; h && i < nk; i++) {
        size_t len = (i + 1) * every;
        entry *e = find(c, h[i], version, tok, len);
        const recs *r = e ? e->recs : NULL;
        if (!r || e->nfloats != nfloats || r->k < k || r->from > upto)
            break;
        for (size_t p = upto; p < len; p++) { /* p - r->from: its index in r */
            size_t q = p - r->from;
            lp[p - 1] = r->lp[q];
            memcpy(top_lp + (p - 1) * kk, r->top_lp + q * (size_t)r->k, kk * sizeof *top_lp);
            memcpy(top_id + (p - 1) * kk, r->top_id + q * (size_t)r->k, kk * sizeof *top_id);
        }
        upto = len;
        lru_touch(c, e);
        last = e;
    }
    size_t found = last ? last->n : 0;
    if (last)
        memcpy(snap, last->snap, nfloats * sizeof *snap);
    return lookup_done(c, h, found);
}

int state_cache_retire(state_cache *c, const char *name, uint64_t floor)
{
    if (!c)
        return 0;
    uint64_t nh = name_hash(name);
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    size_t i = 0;
    while (i < c->nfloors && c->floors[i].name_hash != nh)
        i++;
    if (i == c->nfloors) {
        struct floor *f = realloc(c->floors, (c->nfloors + 1) * sizeof *f);
        if (f) {
            c->floors = f;
            f[c->nfloors++] = (struct floor){nh, 0};
        } else {
            rc = -1;
        }
    }
    if (i < c->nfloors && c->floors[i].version < floor)
        c->floors[i].version = floor;
    for (entry *e = TAILQ_FIRST(&c->lru), *next; e; e = next) {
        next = TAILQ_NEXT(e, lru);
        if (e->name_hash == nh && e->version < floor) {
            drop(c, e);
            c->st.retired++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void state_cache_stats_get(state_cache *c, state_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    out->bytes = c->bytes;
    pthread_mutex_unlock(&c->mu);
}
