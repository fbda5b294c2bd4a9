/* The sampler's contracts (sampler.h): seeds, greedy decoding, stop strings,
 * rejected parameters, batch invariance. */
#include "testutil.h"

#include <cblas.h>
#include <string.h>

/* ---- sampler ----------------------------------------------------------- */

static charrnn_model *sampler_model(void)
{
    const char text[] = "the quick brown fox \xC3\xA9\xE2\x82\xAC\n";
    charrnn_vocab *v = text_vocab(text, sizeof text - 1);
    charrnn_config cfg = {CHARRNN_CELL_LSTM, (int)charrnn_vocab_size(v), 8, 2};
    charrnn_model *m;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_model_create(&cfg, v, &m, err, sizeof err), CHARRNN_OK);
    /* Large random weights: peaked, state-dependent distributions. */
    charrnn_rng r;
    charrnn_rng_seed(&r, 99);
    for (size_t i = 0; i < m->num_params; i++)
        m->params[i] = 2.0f * (2.0f * charrnn_rng_uniform_f(&r) - 1.0f);
    return m;
}

typedef struct out {
    char text[8192];
    size_t len;
    charrnn_finish finish;
    size_t generated;
} out;

static void run_stream(const charrnn_model *m, const charrnn_sample_params *p, out *o)
{
    charrnn_stream *s;
    char err[CHARRNN_ERR_MAX];
    ck_assert_msg(charrnn_stream_create(m, p, &s, err, sizeof err) == CHARRNN_OK, "%s", err);
    o->len = 0;
    while (!charrnn_stream_done(s)) {
        ck_assert_int_eq(charrnn_infer_step(m, 1, &s), CHARRNN_OK);
        o->len += (size_t)charrnn_stream_emit(s, o->text + o->len);
        ck_assert_uint_lt(o->len, sizeof o->text - 8);
    }
    o->text[o->len] = 0;
    o->finish = charrnn_stream_finish_reason(s);
    o->generated = charrnn_stream_generated_chars(s);
    charrnn_stream_free(s);
}

/* After a batched step (step_together): stream k's character onto o[k]. */
static void append(void *ctx, int k, charrnn_stream *s)
{
    out *o = (out *)ctx + k;
    o->len += (size_t)charrnn_stream_emit(s, o->text + o->len);
}

static charrnn_sample_params params(const char *prime, size_t length, float temp, uint64_t seed)
{
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = prime;
    p.prime_len = prime ? strlen(prime) : 0;
    p.length = length;
    p.temperature = temp;
    p.seed = seed;
    return p;
}

/* Number of code points, asserting the bytes are valid UTF-8. */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t cp;
        int l = charrnn_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        ck_assert_msg(l > 0, "invalid UTF-8 at %zu", i);
        i += (size_t)l, k++;
    }
    return k;
}

START_TEST(sampler_seeds)
{
    charrnn_model *m = sampler_model();
    static out a, b, c;
    charrnn_sample_params p = params("the ", 300, 1.0f, 7);
    run_stream(m, &p, &a);
    run_stream(m, &p, &b);
    ck_assert_uint_eq(a.len, b.len);
    ck_assert(memcmp(a.text, b.text, a.len) == 0);
    ck_assert_int_eq(a.finish, CHARRNN_FINISH_LENGTH);
    ck_assert_uint_eq(a.generated, 300);
    ck_assert_uint_eq(utf8_chars(a.text, a.len), 300);
    p.seed = 8;
    run_stream(m, &p, &c);
    ck_assert_msg(c.len != a.len || memcmp(a.text, c.text, a.len) != 0, "seed ignored");
    /* Without a prime as well. */
    p = params(NULL, 100, 0.8f, 1);
    run_stream(m, &p, &a);
    run_stream(m, &p, &b);
    ck_assert_str_eq(a.text, b.text);
    ck_assert_uint_eq(utf8_chars(a.text, a.len), 100);
    charrnn_model_free(m);
}
END_TEST

static int vocab_tok(const charrnn_model *m, const char *s, size_t *i, size_t n)
{
    uint32_t cp;
    int l = charrnn_utf8_decode((const uint8_t *)s + *i, n - *i, &cp);
    ck_assert_int_gt(l, 0);
    *i += (size_t)l;
    int t = charrnn_vocab_index(m->vocab, cp);
    ck_assert_int_ge(t, 0);
    return t;
}

/* Temperature 0 is the argmax path, whatever the seed; checked against the
 * trainer's (independent, batched) forward pass over prime + generated text. */
START_TEST(sampler_greedy_is_argmax)
{
    charrnn_model *m = sampler_model();
    static out g1, g2, k1;
    const char *prime = "fox ";
    charrnn_sample_params p = params(prime, 60, 0.0f, 1);
    run_stream(m, &p, &g1);
    p.seed = 123456789;
    run_stream(m, &p, &g2);
    ck_assert_str_eq(g1.text, g2.text);
    /* top_k = 1 at temperature 1 is the same path. */
    p = params(prime, 60, 1.0f, 42);
    p.top_k = 1;
    run_stream(m, &p, &k1);
    ck_assert_str_eq(k1.text, g1.text);

    /* Tokens of prime + continuation; the trainer predicts each next one. */
    char all[1024];
    size_t n = (size_t)snprintf(all, sizeof all, "%s%s", prime, g1.text), i = 0;
    uint16_t tok[512];
    int T = 0;
    while (i < n)
        tok[T++] = (uint16_t)vocab_tok(m, all, &i, n);
    const int np = 4, L = T - 1;
    charrnn_optim_config oc = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    charrnn_trainer *tr;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_trainer_create(m, 1, L, 0.0f, &oc, 1, &tr, err, sizeof err),
                     CHARRNN_OK);
    charrnn_trainer_forward(tr, tok, tok + 1, CHARRNN_MODE_EVAL);
    const float *pr = charrnn_trainer_probs(tr);
    const int V = m->cfg.vocab_size;
    for (int t = np - 1; t < L; t++) {
        const float *row = pr + (size_t)t * V;
        float best = row[0];
        for (int v = 1; v < V; v++)
            best = row[v] > best ? row[v] : best;
        /* 1e-5: the two forwards round differently (BLAS vs fixed-order dots). */
        ck_assert_msg(row[tok[t + 1]] >= best - 1e-5f, "step %d: chose p=%g, max p=%g", t,
                      (double)row[tok[t + 1]], (double)best);
    }
    charrnn_trainer_free(tr);
    charrnn_model_free(m);
}
END_TEST

START_TEST(sampler_stop_strings)
{
    charrnn_model *m = sampler_model();
    static out g, s;
    charrnn_sample_params p = params("the ", 200, 0.0f, 3);
    run_stream(m, &p, &g);
    ck_assert_uint_ge(g.len, 10);
    /* The two characters at positions 5..6 of the greedy text (first occurrence
     * may be earlier): generation must end right after the first occurrence. */
    char stop[16];
    size_t i = 0;
    for (int k = 0; k < 5; k++) {
        uint32_t cp;
        i += (size_t)charrnn_utf8_decode((const uint8_t *)g.text + i, g.len - i, &cp);
    }
    size_t j = i;
    for (int k = 0; k < 2; k++) {
        uint32_t cp;
        j += (size_t)charrnn_utf8_decode((const uint8_t *)g.text + j, g.len - j, &cp);
    }
    memcpy(stop, g.text + i, j - i);
    stop[j - i] = 0;
    const char *first = strstr(g.text, stop);
    size_t want_len = (size_t)(first - g.text) + strlen(stop);
    const char *never = "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC"; /* may not occur */
    const char *stops[] = {never, stop};
    p.stop = stops;
    p.n_stop = 2;
    run_stream(m, &p, &s);
    ck_assert_int_eq(s.finish, CHARRNN_FINISH_STOP);
    ck_assert_uint_eq(s.len, want_len);
    ck_assert(memcmp(s.text, g.text, want_len) == 0);
    ck_assert(strcmp(s.text + s.len - strlen(stop), stop) == 0); /* the stop string is included */
    ck_assert_uint_eq(s.generated, utf8_chars(s.text, s.len));
    /* A stop string longer than anything generated never fires. */
    const char *none[] = {"zzzzzzzzzzzzzzzzzzzzzzzz"};
    p.stop = none;
    p.n_stop = 1;
    p.length = 30;
    run_stream(m, &p, &s);
    ck_assert_int_eq(s.finish, CHARRNN_FINISH_LENGTH);
    ck_assert_uint_eq(s.generated, 30);
    charrnn_model_free(m);
}
END_TEST

START_TEST(sampler_rejects)
{
    charrnn_model *m = sampler_model();
    charrnn_stream *s = (charrnn_stream *)1;
    char err[CHARRNN_ERR_MAX];
    charrnn_sample_params p = params("the #fox", 10, 1.0f, 1);
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_EVOCAB);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "'#' (U+0023)"), "%s", err);
    p = params("th\xC3", 10, 1.0f, 1);
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_EFORMAT);
    ck_assert_msg(strstr(err, "byte offset 2"), "%s", err);
    static const float bad_t[] = {-0.1f, 10.5f, NAN};
    for (int i = 0; i < 3; i++) {
        p = params("the", 10, bad_t[i], 1);
        ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
        ck_assert_msg(strstr(err, "temperature"), "%s", err);
    }
    p = params("the", 0, 1.0f, 1);
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
    p = params("the", 10, 1.0f, 1);
    p.top_p = 0.0f;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
    p.top_p = 1.5f;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
    p.top_p = 1.0f;
    p.top_k = -1;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
    p.top_k = 0;
    const char *empty[] = {""};
    p.stop = empty;
    p.n_stop = 1;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_ptr_null(s);
    charrnn_model_free(m);
}
END_TEST

/* A stream's bytes do not depend on which other streams share its step. */
START_TEST(sampler_batch_invariance)
{
    charrnn_model *m = sampler_model();
    enum { NS = 5 };
    const char *primes[NS] = {"the ", NULL, "quick brown ", "\xC3\xA9", "fox"};
    const size_t lens[NS] = {80, 40, 120, 60, 100};
    const float temps[NS] = {1.0f, 0.7f, 0.0f, 1.3f, 0.9f};
    charrnn_sample_params ps[NS];
    static out alone[NS], together[NS];
    for (int i = 0; i < NS; i++) {
        ps[i] = params(primes[i], lens[i], temps[i], 1000 + (uint64_t)i);
        ps[i].top_k = i == 4 ? 5 : 0;
        ps[i].top_p = i == 3 ? 0.9f : 1.0f;
        run_stream(m, &ps[i], &alone[i]);
    }
    for (int i = 0; i < NS; i++)
        together[i].len = 0;
    step_together(m, ps, NS, NULL, append, together);
    for (int i = 0; i < NS; i++) {
        together[i].text[together[i].len] = 0;
        ck_assert_msg(together[i].len == alone[i].len &&
                          memcmp(together[i].text, alone[i].text, alone[i].len) == 0,
                      "stream %d differs when batched", i);
    }
    charrnn_model_free(m);
}
END_TEST

int main(void)
{
    openblas_set_num_threads(1);
    RUN_TESTS("sampler", sampler_seeds, sampler_greedy_is_argmax, sampler_stop_strings,
              sampler_rejects, sampler_batch_invariance);
}
