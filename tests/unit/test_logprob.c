/* Check suite for log-probabilities (logprob.h) and the sampler's records of
 * them (charrnn_stream_logprob), logit_bias and text scoring:
 *   core:        top-k selection equals a full sort (ties by index) for every
 *                k; log-probabilities sum to 1.
 *   streams:     the records of a stream are the same bits alone, in batches
 *                of 1..40 and with every kernel build; a text scored through
 *                score_prime gets the same numbers its characters got while
 *                they were generated; the records follow the emitted text.
 *   logit_bias:  +100 forces a character, -100 bans it; log-probabilities
 *                stay the model's own; bad entries are refused. */
#include "charrnn/logprob.h"
#include "charrnn/model.h"
#include "charrnn/rng.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "charrnn/vocab.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- core ---- */

static const float *cmp_logits;
static int by_rank(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (cmp_logits[x] != cmp_logits[y])
        return cmp_logits[x] > cmp_logits[y] ? -1 : 1;
    return x - y;
}

START_TEST(top_k_equals_full_sort)
{
    enum { V = 97 };
    float lg[V];
    int want[V], id[V];
    float lp[V];
    charrnn_rng r;
    charrnn_rng_seed(&r, 42);
    for (int trial = 0; trial < 50; trial++) {
        /* few distinct values in half the trials: many ties */
        for (int v = 0; v < V; v++)
            lg[v] = trial % 2 ? (float)(int)(charrnn_rng_uniform_f(&r) * 6)
                              : 8.0f * charrnn_rng_uniform_f(&r) - 4.0f;
        for (int v = 0; v < V; v++)
            want[v] = v;
        cmp_logits = lg;
        qsort(want, V, sizeof *want, by_rank);
        double lse = charrnn_logsumexp(lg, V);
        for (int k = 0; k <= V; k++) {
            charrnn_top_logprobs(lg, V, lse, k, id, lp);
            for (int i = 0; i < k; i++) {
                ck_assert_msg(id[i] == want[i], "trial %d k %d: rank %d is %d, want %d", trial, k,
                              i, id[i], want[i]);
                ck_assert(lp[i] == charrnn_logprob_of(lg, lse, id[i]));
            }
        }
        double total = 0.0;
        for (int v = 0; v < V; v++)
            total += exp((double)charrnn_logprob_of(lg, lse, v));
        ck_assert_double_eq_tol(total, 1.0, 1e-5);
    }
}
END_TEST

START_TEST(logsumexp_of_large_logits)
{
    float lg[3] = {1000.0f, 1000.0f, -1000.0f};
    double lse = charrnn_logsumexp(lg, 3);
    ck_assert_double_eq_tol(lse, 1000.0 + log(2.0), 1e-9);
    ck_assert_float_eq_tol(charrnn_logprob_of(lg, lse, 0), (float)-log(2.0), 1e-7);
}
END_TEST

/* ---- streams ---- */

enum { NS = 40, MAXC = 400, K = 5 };

/* What a stream produced: text bytes and one record per character. */
typedef struct trace {
    char text[4 * MAXC];
    size_t len;
    int n;
    int tok[MAXC], prime[MAXC], has[MAXC];
    float lp[MAXC];
    int top_id[MAXC][K];
    float top_lp[MAXC][K];
} trace;

static charrnn_sample_params request(int i)
{
    static const char *primes[] = {NULL, "the ", "\xC3\xA9t\xC3\xA9 ", "WIZARDS", "q", "lazy "};
    static const float temps[] = {1.0f, 0.0f, 0.7f, 1.4f, 0.9f};
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = primes[i % 6];
    p.prime_len = p.prime ? strlen(p.prime) : 0;
    p.length = 20 + (size_t)((i * 37) % 120);
    p.temperature = temps[i % 5];
    p.top_k = i % 4 == 1 ? 3 : 0;
    p.top_p = i % 3 == 2 ? 0.85f : 1.0f;
    p.seed = 1000003ull * (uint64_t)i + 17;
    p.logprobs = 1;
    p.top_logprobs = i % 6; /* 0..5 alternatives */
    p.score_prime = i % 2;
    return p;
}

static void collect(charrnn_stream *s, trace *t)
{
    char b[8];
    int len = charrnn_stream_emit(s, b);
    memcpy(t->text + t->len, b, (size_t)len);
    t->len += (size_t)len;
    charrnn_logprob r;
    if (!charrnn_stream_logprob(s, &r))
        return;
    ck_assert_int_lt(t->n, MAXC);
    t->tok[t->n] = r.token, t->prime[t->n] = r.is_prime, t->has[t->n] = r.has_logprob;
    t->lp[t->n] = r.logprob;
    ck_assert_int_le(r.n_top, K);
    memset(t->top_id[t->n], 0xff, sizeof t->top_id[t->n]);
    memset(t->top_lp[t->n], 0, sizeof t->top_lp[t->n]);
    memcpy(t->top_id[t->n], r.top_id, (size_t)r.n_top * sizeof(int));
    memcpy(t->top_lp[t->n], r.top_lp, (size_t)r.n_top * sizeof(float));
    t->n++;
}

typedef struct batch {
    const int *idx;
    trace *o;
} batch;

/* After a batched step (step_together): stream k's onto request idx[k]'s trace. */
static void collect_batched(void *ctx, int k, charrnn_stream *s)
{
    const batch *b = ctx;
    collect(s, &b->o[b->idx[k]]);
}

static void run_batch(const charrnn_model *m, const int *idx, int n, trace *o)
{
    charrnn_sample_params ps[NS];
    for (int k = 0; k < n; k++) {
        ps[k] = request(idx[k]);
        memset(&o[idx[k]], 0, sizeof o[idx[k]]);
    }
    step_together(m, ps, n, NULL, collect_batched, &(batch){idx, o});
}

static int same(const trace *a, const trace *b)
{
    return a->len == b->len && !memcmp(a->text, b->text, a->len) && a->n == b->n &&
        !memcmp(a->tok, b->tok, sizeof a->tok) && !memcmp(a->lp, b->lp, sizeof a->lp) &&
        !memcmp(a->has, b->has, sizeof a->has) && !memcmp(a->top_id, b->top_id, sizeof a->top_id) &&
        !memcmp(a->top_lp, b->top_lp, sizeof a->top_lp);
}

static void check_invariance(charrnn_model *m, const char *what)
{
    static trace alone[NS], together[NS];
    int idx[NS];
    for (int i = 0; i < NS; i++)
        run_batch(m, &i, 1, alone);
    static const int sizes[] = {5, 16, 17, 40};
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
        for (int i = 0; i < NS; i++)
            idx[i] = NS - 1 - i;
        for (int k = 0; k < NS; k += sizes[z])
            run_batch(m, idx + k, NS - k < sizes[z] ? NS - k : sizes[z], together);
        for (int i = 0; i < NS; i++)
            ck_assert_msg(same(&together[i], &alone[i]), "%s: stream %d differs in batches of %d",
                          what, i, sizes[z]);
    }
    static const char *kernels[] = {"avx512", "avx2", "portable"};
    const char *def = charrnn_kernel_name();
    for (size_t k = 0; k < sizeof kernels / sizeof *kernels; k++) {
        if (charrnn_kernel_select(kernels[k], NULL, 0) != CHARRNN_OK)
            continue;
        for (int i = 0; i < NS; i++)
            idx[i] = i;
        for (int j = 0; j < NS; j += 17)
            run_batch(m, idx + j, NS - j < 17 ? NS - j : 17, together);
        for (int i = 0; i < NS; i++)
            ck_assert_msg(same(&together[i], &alone[i]), "%s: stream %d differs with kernel %s",
                          what, i, kernels[k]);
    }
    ck_assert_int_eq(charrnn_kernel_select(def, NULL, 0), CHARRNN_OK);
    /* Records follow the text: one per generated character (plus the scored
     * prime characters first), the first of an unprimed stream without a
     * log-probability, every other one a real one at or below its top-1. */
    for (int i = 0; i < NS; i++) {
        charrnn_sample_params p = request(i);
        const trace *t = &alone[i];
        size_t nprime = 0;
        for (size_t b = 0; b < p.prime_len; b++)
            nprime += ((unsigned char)p.prime[b] & 0xC0) != 0x80;
        size_t scored = p.score_prime && nprime > 0 ? nprime - 1 : 0;
        size_t chars = 0;
        for (size_t b = 0; b < t->len; b++)
            chars += ((unsigned char)t->text[b] & 0xC0) != 0x80;
        ck_assert_int_eq((size_t)t->n, scored + chars);
        for (int r = 0; r < t->n; r++) {
            ck_assert_int_eq(t->prime[r], (size_t)r < scored);
            int unprimed_first = nprime == 0 && r == 0;
            ck_assert_int_eq(t->has[r], !unprimed_first);
            if (!t->has[r])
                continue;
            ck_assert(t->lp[r] <= 0.0f);
            if (p.top_logprobs > 0)
                ck_assert(t->lp[r] <= t->top_lp[r][0]);
            for (int j = 1; j < p.top_logprobs; j++)
                ck_assert(t->top_lp[r][j] <= t->top_lp[r][j - 1]);
        }
    }
    charrnn_model_free(m);
}

START_TEST(records_batch_invariant_lstm)
{
    check_invariance(chaotic_model(CHARRNN_CELL_LSTM, 45, 2, 1), "lstm 2x45");
}
END_TEST
START_TEST(records_batch_invariant_gru)
{
    check_invariance(chaotic_model(CHARRNN_CELL_GRU, 32, 1, 2), "gru 1x32");
}
END_TEST

/* Scoring prime + generated text (length 0) reproduces, bit for bit, the
 * numbers the generated characters got while they were sampled. */
START_TEST(score_equals_generation)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_LSTM, 40, 2, 3);
    char err[CHARRNN_ERR_MAX];
    static trace gen, sc;
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = "the ";
    p.prime_len = 4;
    p.length = 60;
    p.seed = 9;
    p.temperature = 0.8f;
    p.top_p = 0.9f;
    p.logprobs = 1, p.top_logprobs = 3;
    charrnn_stream *s;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_OK);
    memset(&gen, 0, sizeof gen);
    while (!charrnn_stream_done(s)) {
        charrnn_infer_step(m, 1, &s);
        collect(s, &gen);
    }
    charrnn_stream_free(s);
    ck_assert_int_eq(gen.n, 60);

    char text[4 * MAXC];
    memcpy(text, "the ", 4);
    memcpy(text + 4, gen.text, gen.len);
    charrnn_sample_params q = charrnn_sample_defaults();
    q.prime = text;
    q.prime_len = 4 + gen.len;
    q.length = 0;
    q.temperature = 1.3f; /* sampling settings never change the numbers */
    q.top_k = 2;
    q.logprobs = 1, q.top_logprobs = 3, q.score_prime = 1;
    ck_assert_int_eq(charrnn_stream_create(m, &q, &s, err, sizeof err), CHARRNN_OK);
    memset(&sc, 0, sizeof sc);
    int steps = 0;
    while (!charrnn_stream_done(s)) {
        charrnn_infer_step(m, 1, &s);
        collect(s, &sc);
        steps++;
    }
    charrnn_stream_free(s);
    ck_assert_int_eq(sc.len, 0);    /* scoring emits no text */
    ck_assert_int_eq(sc.n, 3 + 60); /* every character after the first */
    ck_assert_int_eq(steps, 3 + 60);
    for (int r = 0; r < 60; r++) {
        ck_assert_int_eq(sc.tok[3 + r], gen.tok[r]);
        ck_assert_msg(sc.lp[3 + r] == gen.lp[r], "char %d: scored %.9g, generated %.9g", r,
                      (double)sc.lp[3 + r], (double)gen.lp[r]);
        ck_assert(!memcmp(sc.top_id[3 + r], gen.top_id[r], sizeof gen.top_id[r]));
        ck_assert(!memcmp(sc.top_lp[3 + r], gen.top_lp[r], sizeof gen.top_lp[r]));
    }
    /* A one-character text has nothing to score: done at once. */
    q.prime = "t", q.prime_len = 1;
    ck_assert_int_eq(charrnn_stream_create(m, &q, &s, err, sizeof err), CHARRNN_OK);
    ck_assert(charrnn_stream_done(s));
    charrnn_stream_free(s);
    /* length 0 without scoring is refused */
    q.score_prime = 0;
    ck_assert_int_eq(charrnn_stream_create(m, &q, &s, err, sizeof err), CHARRNN_ERANGE);
    charrnn_model_free(m);
}
END_TEST

/* ---- logit_bias ---- */

static void generate(const charrnn_model *m, charrnn_sample_params *p, trace *t)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_stream *s;
    ck_assert_msg(charrnn_stream_create(m, p, &s, err, sizeof err) == CHARRNN_OK, "%s", err);
    memset(t, 0, sizeof *t);
    while (!charrnn_stream_done(s)) {
        charrnn_infer_step(m, 1, &s);
        collect(s, t);
    }
    charrnn_stream_free(s);
}

START_TEST(logit_bias_forces_and_bans)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_LSTM, 24, 1, 4);
    const int V = m->cfg.vocab_size;
    int q = -1, e = -1;
    for (int v = 0; v < V; v++) {
        uint32_t cp = charrnn_vocab_codepoint(m->vocab, (size_t)v);
        q = cp == 'q' ? v : q;
        e = cp == 'e' ? v : e;
    }
    static trace plain, forced, banned;
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = "the ", p.prime_len = 4, p.length = 80, p.seed = 5;
    p.logprobs = 1, p.top_logprobs = 2;
    generate(m, &p, &plain);
    int plain_e = 0;
    for (size_t b = 0; b < plain.len; b++)
        plain_e += plain.text[b] == 'e';
    ck_assert_msg(plain_e > 0, "the test needs an 'e' without bias: %.*s", (int)plain.len,
                  plain.text);

    int id = q;
    float val = 100.0f;
    p.bias_id = &id, p.bias_val = &val, p.n_bias = 1;
    generate(m, &p, &forced);
    for (size_t b = 0; b < forced.len; b++)
        ck_assert_msg(forced.text[b] == 'q', "+100 on 'q' still gave %.*s", (int)forced.len,
                      forced.text);
    /* The reported numbers are the model's own: the same as scoring the
     * forced text without a bias. */
    static trace sc;
    char text[4 * MAXC];
    memcpy(text, "the ", 4);
    memcpy(text + 4, forced.text, forced.len);
    charrnn_sample_params q_ = charrnn_sample_defaults();
    q_.prime = text, q_.prime_len = 4 + forced.len, q_.length = 0;
    q_.logprobs = 1, q_.top_logprobs = 2, q_.score_prime = 1;
    generate(m, &q_, &sc);
    ck_assert_int_eq(sc.n, 3 + forced.n);
    for (int r = 0; r < forced.n; r++) {
        ck_assert_msg(sc.lp[3 + r] == forced.lp[r], "char %d: %.9g with bias, %.9g scored", r,
                      (double)forced.lp[r], (double)sc.lp[3 + r]);
        ck_assert(!memcmp(sc.top_lp[3 + r], forced.top_lp[r], sizeof sc.top_lp[r]));
    }

    id = e, val = -100.0f;
    p.temperature = 1.5f;
    generate(m, &p, &banned);
    for (size_t b = 0; b < banned.len; b++)
        ck_assert_msg(banned.text[b] != 'e', "-100 on 'e' still gave %.*s", (int)banned.len,
                      banned.text);

    char err[CHARRNN_ERR_MAX];
    charrnn_stream *s;
    id = V, val = 1.0f;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_msg(strstr(err, "logit_bias") != NULL, "%s", err);
    id = 0, val = 100.5f;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
    int ids[2] = {3, 3};
    float vals[2] = {1, 2};
    p.bias_id = ids, p.bias_val = vals, p.n_bias = 2;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
    p.n_bias = 0;
    p.top_logprobs = V + 1;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
    charrnn_model_free(m);
}
END_TEST

/* The model-dependent limits name their field (what /sample, /score and /v1
 * report as "param"). */
START_TEST(model_limits_name_their_field)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_RNN, 8, 1, 6);
    const int V = m->cfg.vocab_size;
    char err[CHARRNN_ERR_MAX];
    charrnn_sample_field f;
    charrnn_sample_params p = charrnn_sample_defaults();
    p.logprobs = 1, p.top_logprobs = V;
    ck_assert_int_eq(charrnn_sample_params_check_model(&p, m, &f, err, sizeof err), CHARRNN_OK);
    ck_assert_int_eq(f, CHARRNN_SAMPLE_NONE);
    p.top_logprobs = V + 1;
    ck_assert_int_eq(charrnn_sample_params_check_model(&p, m, &f, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_int_eq(f, CHARRNN_SAMPLE_LOGPROBS);
    ck_assert_msg(strstr(err, "logprobs: ") == err, "%s", err);
    p.top_logprobs = -1;
    ck_assert_int_eq(charrnn_sample_params_check(&p, &f, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_int_eq(f, CHARRNN_SAMPLE_LOGPROBS);
    p.top_logprobs = 0;
    int ids[2] = {1, V};
    float vals[2] = {5, 5};
    p.bias_id = ids, p.bias_val = vals, p.n_bias = 2;
    ck_assert_int_eq(charrnn_sample_params_check_model(&p, m, &f, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_int_eq(f, CHARRNN_SAMPLE_LOGIT_BIAS);
    ids[1] = 1; /* twice */
    ck_assert_int_eq(charrnn_sample_params_check_model(&p, m, &f, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_int_eq(f, CHARRNN_SAMPLE_LOGIT_BIAS);
    ids[1] = 2, vals[1] = -100.5f;
    ck_assert_int_eq(charrnn_sample_params_check(&p, &f, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_int_eq(f, CHARRNN_SAMPLE_LOGIT_BIAS);
    vals[1] = -100.0f;
    ck_assert_int_eq(charrnn_sample_params_check_model(&p, m, &f, err, sizeof err), CHARRNN_OK);
    /* length 0 only for a scoring stream */
    p.n_bias = 0, p.length = 0;
    ck_assert_int_eq(charrnn_sample_params_check(&p, &f, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_int_eq(f, CHARRNN_SAMPLE_LENGTH);
    p.score_prime = 1;
    ck_assert_int_eq(charrnn_sample_params_check(&p, &f, err, sizeof err), CHARRNN_OK);
    p.logprobs = 0;
    ck_assert_int_eq(charrnn_sample_params_check(&p, &f, err, sizeof err), CHARRNN_ERANGE);
    charrnn_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("logprob");
    ADD_CASE(s, "core", top_k_equals_full_sort, logsumexp_of_large_logits);
    TCase *st = ADD_CASE(s, "streams", records_batch_invariant_lstm, records_batch_invariant_gru,
                         score_equals_generation);
    tcase_set_timeout(st, 120);
    ADD_CASE(s, "logit_bias", logit_bias_forces_and_bans);
    ADD_CASE(s, "limits", model_limits_name_their_field);
    return run_suite(s);
}
