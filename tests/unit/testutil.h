/* Helpers shared by the Check suites. */
#ifndef CHARRNN_TESTUTIL_H
#define CHARRNN_TESTUTIL_H

#include "charrnn/charrnn.h"
#include "check_run.h" /* run_suite, ADD_CASE, RUN_TESTS */

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Directory of the committed reference fixtures (set by meson). */
static inline const char *fixture_dir(void)
{
    const char *d = getenv("CHARRNN_FIXTURES");
    return d ? d : "tests/reference";
}

/* The vocabulary of a UTF-8 text (which must be valid). */
static inline charrnn_vocab *text_vocab(const char *text, size_t n)
{
    charrnn_vocab *v;
    char err[CHARRNN_ERR_MAX];
    ck_assert_msg(charrnn_vocab_build((const uint8_t *)text, n, &v, err, sizeof err) == CHARRNN_OK,
                  "%s", err);
    return v;
}

/* A vocabulary of n consecutive letters starting at 'A'. */
static inline charrnn_vocab *letters_vocab(int n)
{
    uint32_t cps[256];
    for (int i = 0; i < n; i++)
        cps[i] = 'A' + (uint32_t)i;
    charrnn_vocab *v = NULL;
    ck_assert_int_eq(charrnn_vocab_from_codepoints(cps, (size_t)n, &v, NULL, 0), CHARRNN_OK);
    return v;
}

/* Fills m's parameters with large random weights, U(-1.5, 1.5) drawn from
 * seed: chaotic state, peaked and state-dependent distributions, so a one-ulp
 * difference anywhere soon changes the text. */
static inline void chaotic_weights(charrnn_model *m, uint64_t seed)
{
    charrnn_rng r;
    charrnn_rng_seed(&r, seed);
    for (size_t i = 0; i < m->num_params; i++)
        m->params[i] = 1.5f * (2.0f * charrnn_rng_uniform_f(&r) - 1.0f);
}

/* A model with chaotic_weights over the vocabulary of a mixed ASCII and
 * multi-byte UTF-8 text (the streams' primes are drawn from it). */
static inline charrnn_model *chaotic_model(charrnn_cell cell, int hidden, int layers, uint64_t seed)
{
    static const char text[] = "the quick brown fox jumps over lazy dogs; THE FIVE BOXING WIZARDS "
                               "\xC3\xA9t\xC3\xA9 \xE2\x82\xAC 0123\n";
    char err[CHARRNN_ERR_MAX];
    charrnn_vocab *v = text_vocab(text, sizeof text - 1);
    charrnn_config cfg = {cell, (int)charrnn_vocab_size(v), hidden, layers};
    charrnn_model *m = NULL;
    ck_assert_int_eq(charrnn_model_create(&cfg, v, &m, err, sizeof err), CHARRNN_OK);
    chaotic_weights(m, seed);
    return m;
}

/* Tests that write a checkpoint wrong keep its metadata and tensors in
 * editable arrays. st_meta_set sets key to value, appends it when absent (the
 * array must have room) or removes it when value is NULL (it must be there). */
static inline void st_meta_set(charrnn_st_meta *meta, size_t *nm, const char *key,
                               const char *value)
{
    for (size_t i = 0; i < *nm; i++)
        if (strcmp(meta[i].key, key) == 0) {
            if (value)
                meta[i].value = value;
            else
                meta[i] = meta[--*nm];
            return;
        }
    ck_assert_ptr_nonnull(value);
    meta[(*nm)++] = (charrnn_st_meta){key, value};
}

/* The tensor called name, which must be there. */
static inline charrnn_st_tensor *st_tensor_find(charrnn_st_tensor *t, size_t nt, const char *name)
{
    for (size_t i = 0; i < nt; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    ck_abort_msg("no tensor %s", name);
    return NULL;
}

/* The verdict of assert_close: the index of the worst element outside
 * |got - want| <= rel*|want| + abs_floor, or n when every element is within.
 * A NaN or an infinity in either array is outside, the worst of all (the
 * first such one), whatever the tolerance: a NaN compares false with
 * everything, and inf - inf is a NaN, so arithmetic alone lets them pass. */
static inline size_t close_worst(const float *got, const float *want, size_t n, double rel,
                                 double abs_floor)
{
    size_t worst = n;
    double worst_excess = 0.0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i], excess = INFINITY;
        if (isfinite(g) && isfinite(w))
            excess = fabs(g - w) - (rel * fabs(w) + abs_floor);
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    return worst;
}

/* n floats (malloc'd, at least one) uniform in [-1, 1) from r. */
static inline float *rand_floats(charrnn_rng *r, size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = 2.0f * charrnn_rng_uniform_f(r) - 1.0f;
    return p;
}

/* |got - want| <= rel*|want| + abs_floor, element by element; reports the worst. */
static inline void assert_close(const char *what, const float *got, const float *want, size_t n,
                                double rel, double abs_floor)
{
    size_t w = close_worst(got, want, n, rel, abs_floor);
    ck_assert_msg(w == n, "%s: element %zu is %.9g, expected %.9g (tol %.1e rel + %.1e)", what, w,
                  w < n ? (double)got[w] : 0.0, w < n ? (double)want[w] : 0.0, rel, abs_floor);
}

/* The same network with its matrices reduced to dt (the f32 model is freed). */
static inline charrnn_model *reduced_model(charrnn_model *m, charrnn_dtype dt)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_model *q = NULL;
    ck_assert_msg(charrnn_model_reduce(m, dt, &q, err, sizeof err) == CHARRNN_OK, "%s", err);
    charrnn_model_free(m);
    return q;
}

/* An open row split (charrnn/rowsplit.h) with n (1 or 2) helper threads
 * inside it, for the suites that check a split step gives the unsplit bits. */
typedef struct split_helpers {
    charrnn_rowsplit *rs;
    pthread_t th[2];
    int n;
} split_helpers;

static inline void *split_helper_thread(void *rs)
{
    charrnn_rowsplit_help(rs);
    return NULL;
}

/* Returns once all n helpers are in the split. */
static inline void split_helpers_start_n(split_helpers *h, int n)
{
    ck_assert(n >= 1 && n <= 2);
    h->n = n;
    h->rs = charrnn_rowsplit_create();
    ck_assert_ptr_nonnull(h->rs);
    charrnn_rowsplit_open(h->rs);
    for (int k = 0; k < n; k++)
        ck_assert_int_eq(pthread_create(&h->th[k], NULL, split_helper_thread, h->rs), 0);
    while (charrnn_rowsplit_helpers(h->rs) < n)
        sched_yield();
}

static inline void split_helpers_start(split_helpers *h)
{
    split_helpers_start_n(h, 2);
}

/* Closes the split, joins the helpers (none may stay in it) and frees it. */
static inline void split_helpers_stop(split_helpers *h)
{
    charrnn_rowsplit_close(h->rs);
    for (int k = 0; k < h->n; k++)
        pthread_join(h->th[k], NULL);
    ck_assert_int_eq(charrnn_rowsplit_helpers(h->rs), 0);
    charrnn_rowsplit_free(h->rs);
    h->rs = NULL;
}

/* Creates a stream for each of ps[0..n) and steps them together, as the
 * daemon does, until every one is done: each step takes the streams not yet
 * done, in their order (charrnn_infer_step_split; rs NULL: the plain step),
 * then calls after(ctx, k, stream k) for every k of the n, the done ones too
 * (a stream the step left out has nothing to emit). Frees the streams. */
enum { STEP_MAX_STREAMS = 64 };
static inline void step_together(const charrnn_model *m, const charrnn_sample_params *ps, int n,
                                 charrnn_rowsplit *rs,
                                 void (*after)(void *ctx, int k, charrnn_stream *s), void *ctx)
{
    charrnn_stream *s[STEP_MAX_STREAMS], *active[STEP_MAX_STREAMS];
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_le(n, STEP_MAX_STREAMS);
    for (int k = 0; k < n; k++)
        ck_assert_msg(charrnn_stream_create(m, &ps[k], &s[k], err, sizeof err) == CHARRNN_OK, "%s",
                      err);
    for (;;) {
        size_t na = 0;
        for (int k = 0; k < n; k++)
            if (!charrnn_stream_done(s[k]))
                active[na++] = s[k];
        if (na == 0)
            break;
        ck_assert_int_eq(charrnn_infer_step_split(m, na, active, rs), CHARRNN_OK);
        for (int k = 0; k < n; k++)
            after(ctx, k, s[k]);
    }
    for (int k = 0; k < n; k++)
        charrnn_stream_free(s[k]);
}

#endif
