/* Check suite for the sampler's top_k / top_p candidate selection at the
 * vocabulary limit (65,536 characters).
 *
 * The model has zero decoder weights, so its logits are the decoder bias
 * whatever the state: the candidates a step may draw from are known exactly
 * and are computed here the slow, obvious way (a full sort by logit,
 * descending, ties by lower token). The biases are quantized so that ties
 * straddle the top_k boundary. And a step runs on a thread with a small
 * stack: the sampler must not put V-sized arrays on the stack. */
#include "charrnn/model.h"
#include "charrnn/rng.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "charrnn/vocab.h"
#include "check_run.h"

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { V = 65536, STEPS = 100 };

static charrnn_model *make_model(uint64_t seed)
{
    char err[CHARRNN_ERR_MAX];
    uint32_t *cps = malloc(V * sizeof *cps);
    ck_assert_ptr_nonnull(cps);
    for (uint32_t i = 0; i < V; i++) {
        uint32_t c = 0x100 + i;
        cps[i] = c >= 0xD800 ? c + 0x800 : c; /* no surrogates */
    }
    charrnn_vocab *v = NULL;
    ck_assert_int_eq(charrnn_vocab_from_codepoints(cps, V, &v, err, sizeof err), CHARRNN_OK);
    free(cps);
    charrnn_config cfg = {CHARRNN_CELL_RNN, V, 4, 1};
    charrnn_model *m = NULL;
    ck_assert_int_eq(charrnn_model_create(&cfg, v, &m, err, sizeof err), CHARRNN_OK);
    charrnn_rng r;
    charrnn_rng_seed(&r, seed);
    for (size_t i = 0; i < m->num_params; i++)
        m->params[i] = 0.5f * (2.0f * charrnn_rng_uniform_f(&r) - 1.0f);
    memset(m->p.dec_w, 0, (size_t)V * 4 * sizeof *m->p.dec_w);
    /* 64 distinct values over 65,536 tokens: about a thousand tokens per tie. */
    for (int t = 0; t < V; t++)
        m->p.dec_b[t] = (float)(int)(charrnn_rng_uniform_f(&r) * 64) * 0.125f;
    return m;
}

static const float *sort_logits;
static int by_logit(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (sort_logits[x] != sort_logits[y])
        return sort_logits[x] > sort_logits[y] ? -1 : 1;
    return x < y ? -1 : 1;
}

/* allowed[t] = 1 for the tokens top_k and top_p leave (at temperature 1). */
static void reference(const charrnn_model *m, int top_k, float top_p, unsigned char *allowed)
{
    int *ord = malloc(V * sizeof *ord);
    ck_assert_ptr_nonnull(ord);
    for (int t = 0; t < V; t++)
        ord[t] = t;
    sort_logits = m->p.dec_b;
    qsort(ord, V, sizeof *ord, by_logit);
    int n = top_k > 0 && top_k < V ? top_k : V;
    double total = 0, mx = m->p.dec_b[ord[0]];
    for (int i = 0; i < n; i++)
        total += exp(m->p.dec_b[ord[i]] - mx);
    if (top_p < 1.0f) {
        double cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += exp(m->p.dec_b[ord[i]] - mx);
            /* A relative margin: the sampler sums in another order. */
            if (cum >= (double)top_p * total * (1 + 1e-9)) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    memset(allowed, 0, V);
    for (int i = 0; i < n; i++)
        allowed[ord[i]] = 1;
    free(ord);
}

typedef struct run {
    const charrnn_model *m;
    charrnn_stream *s;
    int tokens[STEPS];
    int n;
} run;

static void *steps(void *arg)
{
    run *r = arg;
    char out[8];
    while (!charrnn_stream_done(r->s) && r->n < STEPS) {
        charrnn_infer_step(r->m, 1, &r->s);
        int k = charrnn_stream_emit(r->s, out);
        if (k > 0) {
            uint32_t cp;
            charrnn_utf8_decode((const uint8_t *)out, (size_t)k, &cp);
            r->tokens[r->n++] = charrnn_vocab_index(r->m->vocab, cp);
        }
    }
    return NULL;
}

/* Generates on a thread whose stack is 256 KiB (a V-sized double array is
 * 512 KiB). */
static void generate(const charrnn_model *m, int top_k, float top_p, uint64_t seed, run *r)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_sample_params p = charrnn_sample_defaults();
    p.length = STEPS;
    p.top_k = top_k;
    p.top_p = top_p;
    p.seed = seed;
    p.prime = "\xC4\x80"; /* U+0100, token 0: every drawn token is sampled */
    p.prime_len = 2;
    memset(r, 0, sizeof *r);
    r->m = m;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &r->s, err, sizeof err), CHARRNN_OK);
    pthread_attr_t a;
    pthread_attr_init(&a);
    ck_assert_int_eq(pthread_attr_setstacksize(&a, 256 * 1024), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, &a, steps, r), 0);
    pthread_join(th, NULL);
    pthread_attr_destroy(&a);
    charrnn_stream_free(r->s);
    ck_assert_int_eq(r->n, STEPS);
}

static void check_case(int top_k, float top_p)
{
    charrnn_model *m = make_model(7);
    unsigned char *allowed = malloc(V);
    ck_assert_ptr_nonnull(allowed);
    reference(m, top_k, top_p, allowed);
    size_t n_allowed = 0;
    for (int t = 0; t < V; t++)
        n_allowed += allowed[t];
    static run r;
    unsigned char *seen = calloc(V, 1);
    size_t distinct = 0;
    for (uint64_t seed = 1; seed <= 2; seed++) {
        generate(m, top_k, top_p, seed, &r);
        for (int i = 0; i < r.n; i++) {
            ck_assert_msg(r.tokens[i] >= 0 && allowed[r.tokens[i]],
                          "top_k=%d top_p=%g: token %d is not a candidate", top_k, (double)top_p,
                          r.tokens[i]);
            distinct += !seen[r.tokens[i]];
            seen[r.tokens[i]] = 1;
        }
    }
    /* Not degenerate: small candidate sets are covered, large ones spread. */
    if (n_allowed <= 8)
        ck_assert_uint_eq(distinct, n_allowed);
    else
        ck_assert_uint_gt(distinct, 8);
    free(seen);
    free(allowed);
    charrnn_model_free(m);
}

START_TEST(top_k_1)
{
    check_case(1, 1.0f);
}
END_TEST

START_TEST(top_k_tie_boundary)
{
    /* 5 and 700 cut through a run of tied logits: the lower tokens win. */
    check_case(5, 1.0f);
    check_case(700, 1.0f);
}
END_TEST

START_TEST(top_p_alone)
{
    check_case(0, 0.01f);
    check_case(0, 0.5f);
    check_case(0, 1e-30f); /* the best token only */
}
END_TEST

START_TEST(top_k_and_top_p)
{
    check_case(2000, 0.3f);
    check_case(3, 0.9f);
}
END_TEST

START_TEST(top_k_at_or_above_v)
{
    check_case(V, 1.0f);
    check_case(V, 0.2f);
}
END_TEST

START_TEST(plain)
{
    check_case(0, 1.0f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sampler_select");
    TCase *tc = ADD_CASE(s, "select", top_k_1, top_k_tie_boundary, top_p_alone, top_k_and_top_p,
                         top_k_at_or_above_v);
    tcase_set_timeout(tc, 120);
    TCase *st = ADD_CASE(s, "stack", plain);
    tcase_set_timeout(st, 120);
    return run_suite(s);
}
