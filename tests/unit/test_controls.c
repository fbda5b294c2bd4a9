/* Check suite of the generation controls (sampler.h): min_p keeps exactly the
 * candidates its definition keeps; the penalties change the distribution
 * exactly as defined, over exactly their window (the prime's last characters
 * and then the drawn ones), never the reported log-probabilities, and stay
 * batch invariant; bad values are named by field.
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
        {1.0f, 0.0f, 1.0f, {1, 1, 1, 1, 1, 1}},
        {1.0f, 0.2f, 1.0f, {1, 1, 1, 1, 1, 0}},
        {1.0f, 0.3f, 1.0f, {1, 1, 1, 0, 0, 0}},
        {1.0f, 0.45f, 1.0f, {1, 1, 0, 0, 0, 0}},
        {1.0f, 1.0f, 1.0f, {1, 0, 0, 0, 0, 0}}, /* T 2: ratios sqrt'd: 1 .71 .61 .5 .5 .35 */
        {2.0f, 0.55f, 1.0f, {1, 1, 1, 0, 0, 0}},
        {0.5f, 0.2f, 1.0f, {1, 1, 0, 0, 0, 0}},
        /* after top_p (which keeps A..C, 0.75 of the mass): the intersection */
        {1.0f, 0.2f, 0.7f, {1, 1, 1, 0, 0, 0}},
        {1.0f, 0.45f, 0.7f, {1, 1, 0, 0, 0, 0}},
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

/* The penalised logits of the definition (sampler.h), in double. */
static void penalised(const double lg[V], const int count[V], double rp, double pres, double freq,
                      double out[V])
{
    for (int v = 0; v < V; v++) {
        double l = lg[v];
        if (count[v] > 0) {
            l = l > 0 ? l / rp : l * rp;
            l -= pres + freq * count[v];
        }
        out[v] = l;
    }
}

START_TEST(penalties_change_the_distribution_as_defined)
{
    /* both signs, and an exact 0 (multiplied, as it is not > 0) */
    const float lg[V] = {1.0f, -1.0f, 0.5f, 0.0f, 0.2f, -0.3f};
    double lgd[V];
    for (int v = 0; v < V; v++)
        lgd[v] = lg[v];
    charrnn_model *m = fixed_model(lg);
    static const struct {
        const char *prime;
        int window;
        float rp, pres, freq, t;
        int count[V]; /* of the window's characters */
    } cases[] = {
        {"AABBBD", 64, 2.0f, 0.0f, 0.0f, 1.0f, {2, 3, 0, 1, 0, 0}},
        {"AABBBD", 64, 0.5f, 0.0f, 0.0f, 1.0f, {2, 3, 0, 1, 0, 0}},
        {"AABBBD", 64, 1.0f, 0.7f, 0.0f, 1.0f, {2, 3, 0, 1, 0, 0}},
        {"AABBBD", 64, 1.0f, -1.0f, 0.0f, 1.0f, {2, 3, 0, 1, 0, 0}},
        {"AABBBD", 64, 1.0f, 0.0f, 0.4f, 1.0f, {2, 3, 0, 1, 0, 0}},
        {"AABBBD", 64, 2.0f, 0.5f, 0.3f, 0.7f, {2, 3, 0, 1, 0, 0}},
        /* the window: only the last 2 characters, "BD" */
        {"AABBBD", 2, 1.0f, 0.0f, 1.5f, 1.0f, {0, 1, 0, 1, 0, 0}},
        {"AAAAAAAAAAC", 3, 1.0f, 2.0f, 0.0f, 1.0f, {2, 0, 1, 0, 0, 0}},
    };
    const int n = 6000;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        charrnn_sample_params p = charrnn_sample_defaults();
        p.prime = cases[c].prime, p.prime_len = strlen(cases[c].prime);
        p.temperature = cases[c].t, p.penalty_window = cases[c].window;
        p.repetition_penalty = cases[c].rp, p.presence_penalty = cases[c].pres;
        p.frequency_penalty = cases[c].freq;
        int count[V], all[V] = {1, 1, 1, 1, 1, 1};
        double pl[V], q[V];
        first_counts(m, p, n, count);
        penalised(lgd, cases[c].count, cases[c].rp, cases[c].pres, cases[c].freq, pl);
        softmax_kept(pl, cases[c].t, all, q);
        char what[96];
        snprintf(what, sizeof what, "case %zu (%s window %d rep %g pres %g freq %g)", c,
                 cases[c].prime, cases[c].window, cases[c].rp, cases[c].pres, cases[c].freq);
        check_counts(count, q, n, what);
    }
    charrnn_model_free(m);
}
END_TEST

/* Greedy with a frequency penalty: the drawn characters enter the window
 * (and leave it), so the text cycles with the window's length. */
START_TEST(penalty_window_holds_the_drawn_characters)
{
    const float lg[V] = {1.0f, 0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
    charrnn_model *m = fixed_model(lg);
    static const struct {
        int window;
        const char *prime, *want;
    } cases[] = {
        {64, "F", "ABCDEABC"}, /* every character once, then A (1 - 2) again */
        {1, "F", "ABABABAB"},  /* only the last character is penalised */
        {3, "F", "ABCDABCD"},  /* the last three */
        {3, "", NULL},         /* unprimed: the uniform first character counts */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        charrnn_sample_params p = charrnn_sample_defaults();
        p.prime = cases[c].prime, p.prime_len = strlen(cases[c].prime);
        p.temperature = 0.0f, p.length = 8, p.frequency_penalty = 2.0f;
        p.penalty_window = cases[c].window;
        charrnn_stream *s;
        char err[CHARRNN_ERR_MAX], text[64];
        size_t len = 0;
        ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_OK);
        while (!charrnn_stream_done(s)) {
            ck_assert_int_eq(charrnn_infer_step(m, 1, &s), CHARRNN_OK);
            len += (size_t)charrnn_stream_emit(s, text + len);
        }
        text[len] = 0;
        charrnn_stream_free(s);
        if (cases[c].want) {
            ck_assert_msg(!strcmp(text, cases[c].want), "window %d: %s, expected %s",
                          cases[c].window, text, cases[c].want);
        } else { /* no two equal characters among any 3 in a row */
            for (size_t i = 0; i + 1 < len; i++)
                ck_assert_msg(text[i] != text[i + 1] && (i + 2 >= len || text[i] != text[i + 2]),
                              "window 3: %s", text);
        }
    }
    charrnn_model_free(m);
}
END_TEST

/* The penalties never change the log-probabilities reported. */
START_TEST(penalties_leave_logprobs_alone)
{
    const float lg[V] = {1.0f, 0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
    charrnn_model *m = fixed_model(lg);
    double lse = 0;
    for (int v = 0; v < V; v++)
        lse += exp(lg[v]);
    lse = log(lse);
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = "AAAA", p.prime_len = 4, p.length = 6, p.temperature = 0.0f, p.logprobs = 1;
    p.frequency_penalty = 2.0f, p.repetition_penalty = 3.0f, p.presence_penalty = 1.0f;
    charrnn_stream *s;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_OK);
    int n = 0;
    while (!charrnn_stream_done(s)) {
        ck_assert_int_eq(charrnn_infer_step(m, 1, &s), CHARRNN_OK);
        char ch[4];
        charrnn_stream_emit(s, ch);
        charrnn_logprob r;
        if (charrnn_stream_logprob(s, &r) && r.has_logprob) {
            ck_assert_int_ne(r.token, 0); /* A is penalised away */
            ck_assert_msg(fabs(r.logprob - (lg[r.token] - lse)) < 1e-5, "%g, the model's %g",
                          r.logprob, lg[r.token] - lse);
            n++;
        }
    }
    ck_assert_int_eq(n, 6);
    charrnn_stream_free(s);
    charrnn_model_free(m);
}
END_TEST

/* A penalised stream stepped with others gives the text it gives alone. */
START_TEST(penalties_are_batch_invariant)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_LSTM, 16, 2, 5);
    charrnn_sample_params p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = charrnn_sample_defaults();
        p[i].prime = i % 2 ? "the fox" : "ozo", p[i].prime_len = strlen(p[i].prime);
        p[i].length = 200, p[i].seed = 40 + (uint64_t)i;
        p[i].repetition_penalty = 1.0f + 0.4f * (float)i;
        p[i].presence_penalty = i == 1 ? 0.8f : 0.0f;
        p[i].frequency_penalty = i == 2 ? -0.5f : i == 3 ? 0.6f : 0.0f;
        p[i].penalty_window = 1 + 20 * i, p[i].min_p = i == 3 ? 0.05f : 0.0f;
    }
    char alone[4][1024], together[4][1024];
    size_t la[4] = {0}, lt[4] = {0};
    char err[CHARRNN_ERR_MAX];
    charrnn_stream *s[4];
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(charrnn_stream_create(m, &p[i], &s[i], err, sizeof err), CHARRNN_OK);
        while (!charrnn_stream_done(s[i])) {
            ck_assert_int_eq(charrnn_infer_step(m, 1, &s[i]), CHARRNN_OK);
            la[i] += (size_t)charrnn_stream_emit(s[i], alone[i] + la[i]);
        }
        charrnn_stream_free(s[i]);
    }
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(charrnn_stream_create(m, &p[i], &s[i], err, sizeof err), CHARRNN_OK);
    for (int live = 4; live > 0;) {
        charrnn_stream *batch[4];
        int k = 0;
        for (int i = 0; i < 4; i++)
            if (!charrnn_stream_done(s[i]))
                batch[k++] = s[i];
        ck_assert_int_eq(charrnn_infer_step(m, (size_t)k, batch), CHARRNN_OK);
        for (int i = 0; i < 4; i++)
            lt[i] += (size_t)charrnn_stream_emit(s[i], together[i] + lt[i]);
        live = k;
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(la[i], lt[i]);
        ck_assert_msg(!memcmp(alone[i], together[i], la[i]), "stream %d differs batched", i);
        charrnn_stream_free(s[i]);
    }
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
        {CHARRNN_SAMPLE_REPETITION_PENALTY, 0.0},
        {CHARRNN_SAMPLE_REPETITION_PENALTY, -1.0},
        {CHARRNN_SAMPLE_REPETITION_PENALTY, 10.5},
        {CHARRNN_SAMPLE_PRESENCE_PENALTY, -2.01},
        {CHARRNN_SAMPLE_PRESENCE_PENALTY, 2.5},
        {CHARRNN_SAMPLE_FREQUENCY_PENALTY, -3.0},
        {CHARRNN_SAMPLE_FREQUENCY_PENALTY, INFINITY},
        {CHARRNN_SAMPLE_PENALTY_WINDOW, 0},
        {CHARRNN_SAMPLE_PENALTY_WINDOW, CHARRNN_MAX_PENALTY_WINDOW + 1},
    };
    char err[CHARRNN_ERR_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        charrnn_sample_params p = charrnn_sample_defaults();
        p.prime = "AB", p.prime_len = 2;
        switch (bad[i].f) {
        case CHARRNN_SAMPLE_MIN_P: p.min_p = (float)bad[i].v; break;
        case CHARRNN_SAMPLE_REPETITION_PENALTY: p.repetition_penalty = (float)bad[i].v; break;
        case CHARRNN_SAMPLE_PRESENCE_PENALTY: p.presence_penalty = (float)bad[i].v; break;
        case CHARRNN_SAMPLE_FREQUENCY_PENALTY: p.frequency_penalty = (float)bad[i].v; break;
        case CHARRNN_SAMPLE_PENALTY_WINDOW: p.penalty_window = (int)bad[i].v; break;
        default: ck_abort();
        }
        charrnn_sample_field got = CHARRNN_SAMPLE_NONE;
        ck_assert_int_eq(charrnn_sample_params_check(&p, &got, err, sizeof err), CHARRNN_ERANGE);
        ck_assert_msg(got == bad[i].f, "case %zu: %s", i, err);
        const char *name = charrnn_sample_field_name(bad[i].f);
        ck_assert_msg(!strncmp(err, name, strlen(name)) && err[strlen(name)] == ':', "case %zu: %s",
                      i, err);
        charrnn_stream *s = NULL;
        ck_assert_int_eq(charrnn_stream_create(m, &p, &s, err, sizeof err), CHARRNN_ERANGE);
        ck_assert_ptr_null(s);
    }
    ck_assert_str_eq(charrnn_sample_field_name(CHARRNN_SAMPLE_MIN_P), "min_p");
    ck_assert_str_eq(charrnn_sample_field_name(CHARRNN_SAMPLE_REPETITION_PENALTY),
                     "repetition_penalty");
    ck_assert_str_eq(charrnn_sample_field_name(CHARRNN_SAMPLE_PENALTY_WINDOW), "penalty_window");
    /* the edges are accepted */
    charrnn_sample_params p = charrnn_sample_defaults();
    p.repetition_penalty = 10.0f, p.presence_penalty = -2.0f, p.frequency_penalty = 2.0f;
    p.penalty_window = CHARRNN_MAX_PENALTY_WINDOW;
    ck_assert_int_eq(charrnn_sample_params_check(&p, NULL, err, sizeof err), CHARRNN_OK);
    p.penalty_window = 1, p.repetition_penalty = 1e-6f;
    ck_assert_int_eq(charrnn_sample_params_check(&p, NULL, err, sizeof err), CHARRNN_OK);
    charrnn_model_free(m);
}
END_TEST

int main(void)
{
    RUN_TESTS("controls", min_p_keeps_exactly_its_candidates, min_p_leaves_logprobs_alone,
              penalties_change_the_distribution_as_defined,
              penalty_window_holds_the_drawn_characters, penalties_leave_logprobs_alone,
              penalties_are_batch_invariant, bad_values_name_the_field);
}
