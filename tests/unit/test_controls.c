/* Check suite of the generation controls (sampler.h): min_p keeps exactly the
 * candidates its definition keeps, and bad values are named by field.
 *
 * The model is crafted so its logits are known: every weight 0 and the
 * decoder's bias set to chosen logits, so after any input the next
 * character's logits are exactly those. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#define V 6

/* A 6-letter (A..F) LSTM whose logits are always lg. */
static charrnn_model *fixed_model(const float lg[V])
{
    charrnn_config cfg = {CHARRNN_CELL_LSTM, V, 4, 1};
    charrnn_model *m = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_model_create(&cfg, letters_vocab(V), &m, err, sizeof err), CHARRNN_OK);
    memset(m->params, 0, m->num_params * sizeof *m->params);
    memcpy(m->p.dec_b, lg, V * sizeof *lg);
    return m;
}

/* The first generated character of n streams with seeds 1..n, counted. */
static void first_counts(const charrnn_model *m, charrnn_sample_params p, int n, int count[V])
{
    char err[CHARRNN_ERR_MAX];
    memset(count, 0, V * sizeof *count);
    p.length = 1;
    for (int i = 0; i < n; i++) {
        charrnn_stream *s;
        p.seed = (uint64_t)i + 1;
        ck_assert_msg(charrnn_stream_create(m, &p, &s, err, sizeof err) == CHARRNN_OK, "%s", err);
        char ch[4];
        int len = 0;
        while (!charrnn_stream_done(s)) {
            ck_assert_int_eq(charrnn_infer_step(m, 1, &s), CHARRNN_OK);
            len = charrnn_stream_emit(s, ch);
        }
        ck_assert_int_eq(len, 1);
        count[ch[0] - 'A']++;
        charrnn_stream_free(s);
    }
}

/* counts against the distribution q (n draws): every character with q = 0
 * never drawn, every other one within 5 standard deviations. */
static void check_counts(const int count[V], const double q[V], int n, const char *what)
{
    for (int v = 0; v < V; v++) {
        if (q[v] == 0.0) {
            ck_assert_msg(count[v] == 0, "%s: %c drawn %d times, excluded", what, 'A' + v,
                          count[v]);
            continue;
        }
        double e = n * q[v], sd = sqrt(n * q[v] * (1 - q[v]));
        ck_assert_msg(fabs(count[v] - e) <= 5 * sd + 1, "%s: %c drawn %d times, expected %.1f",
                      what, 'A' + v, count[v], e);
    }
}

/* softmax(lg / t) restricted to keep[], in double. */
static void softmax_kept(const double lg[V], double t, const int keep[V], double q[V])
{
    double mx = -INFINITY, sum = 0;
    for (int v = 0; v < V; v++)
        mx = keep[v] && lg[v] > mx ? lg[v] : mx;
    for (int v = 0; v < V; v++)
        sum += (q[v] = keep[v] ? exp((lg[v] - mx) / t) : 0.0);
    for (int v = 0; v < V; v++)
        q[v] /= sum;
}

/* Probabilities 0.4, 0.2, 0.15, 0.1, 0.1, 0.05: relative to the most likely,
 * 1, 0.5, 0.375, 0.25, 0.25, 0.125 at T 1. */
static const double probs[V] = {0.4, 0.2, 0.15, 0.1, 0.1, 0.05};

START_TEST(min_p_keeps_exactly_its_candidates)
{
    float lg[V];
    double lgd[V];
    for (int v = 0; v < V; v++)
        lg[v] = logf((float)probs[v]), lgd[v] = lg[v];
    charrnn_model *m = fixed_model(lg);
    static const struct {
        float t, min_p, top_p;
        int keep[V];
    } cases[] = {
        {1.0f, 0.0f, 1.0f, {1, 1, 1, 1, 1, 1}},  {1.0f, 0.2f, 1.0f, {1, 1, 1, 1, 1, 0}},
        {1.0f, 0.3f, 1.0f, {1, 1, 1, 0, 0, 0}},  {1.0f, 0.45f, 1.0f, {1, 1, 0, 0, 0, 0}},
        {1.0f, 1.0f, 1.0f, {1, 0, 0, 0, 0, 0}},  /* T 2: ratios sqrt'd: 1 .71 .61 .5 .5 .35 */
        {2.0f, 0.55f, 1.0f, {1, 1, 1, 0, 0, 0}}, {0.5f, 0.2f, 1.0f, {1, 1, 0, 0, 0, 0}},
        /* after top_p (which keeps A..C, 0.75 of the mass): the intersection */
        {1.0f, 0.2f, 0.7f, {1, 1, 1, 0, 0, 0}},  {1.0f, 0.45f, 0.7f, {1, 1, 0, 0, 0, 0}},
    };
    const int n = 6000;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        charrnn_sample_params p = charrnn_sample_defaults();
        p.prime = "A", p.prime_len = 1;
        p.temperature = cases[c].t, p.min_p = cases[c].min_p, p.top_p = cases[c].top_p;
        int count[V];
        double q[V];
        first_counts(m, p, n, count);
        softmax_kept(lgd, cases[c].t, cases[c].keep, q);
        char what[64];
        snprintf(what, sizeof what, "case %zu (T %g min_p %g top_p %g)", c, cases[c].t,
                 cases[c].min_p, cases[c].top_p);
        check_counts(count, q, n, what);
    }
    charrnn_model_free(m);
}
END_TEST

/* min_p keeps the logprobs reported as the model's (before any control). */
START_TEST(min_p_leaves_logprobs_alone)
{
    float lg[V];
    for (int v = 0; v < V; v++)
        lg[v] = logf((float)probs[v]);
    charrnn_model *m = fixed_model(lg);
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = "A", p.prime_len = 1, p.length = 1, p.min_p = 1.0f, p.logprobs = 1;
    charrnn_stream *s;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_OK);
    charrnn_logprob r;
    int got = 0;
    while (!charrnn_stream_done(s)) {
        ck_assert_int_eq(charrnn_infer_step(m, 1, &s), CHARRNN_OK);
        char ch[4];
        charrnn_stream_emit(s, ch);
        got |= charrnn_stream_logprob(s, &r);
    }
    ck_assert(got && r.has_logprob && r.token == 0);
    ck_assert_msg(fabs(r.logprob - log(0.4)) < 1e-5, "logprob %g, the model's is %g", r.logprob,
                  log(0.4));
    charrnn_stream_free(s);
    charrnn_model_free(m);
}
END_TEST

/* Each control out of range: the check names it, a stream is refused. */
START_TEST(bad_values_name_the_field)
{
    float lg[V] = {0};
    charrnn_model *m = fixed_model(lg);
    static const struct {
        charrnn_sample_field f;
        double v;
    } bad[] = {
        {CHARRNN_SAMPLE_MIN_P, -0.01},
        {CHARRNN_SAMPLE_MIN_P, 1.01},
        {CHARRNN_SAMPLE_MIN_P, NAN},
    };
    char err[CHARRNN_ERR_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        charrnn_sample_params p = charrnn_sample_defaults();
        p.prime = "AB", p.prime_len = 2;
        switch (bad[i].f) {
        case CHARRNN_SAMPLE_MIN_P: p.min_p = (float)bad[i].v; break;
        default: ck_abort();
        }
        charrnn_sample_field got = CHARRNN_SAMPLE_NONE;
        ck_assert_int_eq(charrnn_sample_params_check(&p, &got, err, sizeof err), CHARRNN_ERANGE);
        ck_assert_msg(got == bad[i].f, "case %zu: %s", i, err);
        const char *name = charrnn_sample_field_name(bad[i].f);
        ck_assert_msg(!strncmp(err, name, strlen(name)) && err[strlen(name)] == ':',
                      "case %zu: %s", i, err);
        charrnn_stream *s = NULL;
        ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
        ck_assert_ptr_null(s);
    }
    ck_assert_str_eq(charrnn_sample_field_name(CHARRNN_SAMPLE_MIN_P), "min_p");
    charrnn_model_free(m);
}
END_TEST

int main(void)
{
    RUN_TESTS("controls", min_p_keeps_exactly_its_candidates, min_p_leaves_logprobs_alone,
              bad_values_name_the_field);
}
