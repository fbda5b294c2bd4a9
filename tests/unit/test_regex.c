/* Check suite of the regex constraint: the compiler (model/core/regex.c) on
 * hand-picked patterns, its errors and limits; and sampling under it
 * (model/core/sampler.c): every text is a prefix of a match, a complete and
 * final match stops the stream, the mask is before every other control and
 * the reported log-probabilities stay the model's. PCRE2 checks the
 * compiler on random patterns in test_regex_oracle.c. */
#include "testutil.h"

#include "charrnn/regex.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char ALPHA[] = "abcd01 \n-";

static charrnn_regex *compile_over(const char *pattern, const char *alpha, int *rc, char *err)
{
    uint32_t cps[64];
    size_t n = strlen(alpha);
    for (size_t i = 0; i < n; i++)
        cps[i] = (uint8_t)alpha[i];
    charrnn_regex *re = NULL;
    *rc = charrnn_regex_compile(pattern, strlen(pattern), cps, n, &re, err, CHARRNN_ERR_MAX);
    return re;
}

static charrnn_regex *compile(const char *pattern)
{
    int rc;
    char err[CHARRNN_ERR_MAX] = "";
    charrnn_regex *re = compile_over(pattern, ALPHA, &rc, err);
    ck_assert_msg(rc == CHARRNN_OK, "/%s/: %s", pattern, err);
    return re;
}

/* Walks text over ALPHA: -1 when it leaves every match, else the state. */
static int walk(const charrnn_regex *re, const char *text)
{
    int st = 0;
    for (const char *c = text; *c && st >= 0; c++)
        st = charrnn_regex_next(re, st, (size_t)(strchr(ALPHA, *c) - ALPHA));
    return st;
}

static int full(const charrnn_regex *re, const char *text)
{
    int st = walk(re, text);
    return st >= 0 && charrnn_regex_accepting(re, st);
}

START_TEST(matches)
{
    static const struct {
        const char *pattern, *yes[4], *no[4];
    } cases[] = {
        {"abc", {"abc"}, {"", "ab", "abcd", "abd"}},
        {"^abc$", {"abc"}, {"", "ab", "abcc"}},
        {"a(b|c)*d", {"ad", "abd", "acbcd"}, {"a", "abdd", "d"}},
        {"(?:ab|a)b?", {"a", "ab", "abb"}, {"", "abbb", "b"}},
        {"[a-c]{2,3}", {"ab", "ccc"}, {"a", "abca", "ad"}},
        {"[^a-c]+", {"d", "0 1", "\n"}, {"", "a", "da"}},
        {".+", {"a", "d0 -"}, {"", "\n", "a\n"}},
        {"\\d{2}-\\d", {"01-1"}, {"01-", "0a-1", "011"}},
        {"\\w\\s\\W", {"a -", "0\n "}, {"a a", "- -"}},
        {"a{0}b", {"b"}, {"ab", ""}},
        {"a|", {"a", ""}, {"aa"}},
        {"(a*)*", {"", "aaa"}, {"b"}},
        {"[-a]\\.?", {"-", "a"}, {"b"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        charrnn_regex *re = compile(cases[i].pattern);
        for (int k = 0; k < 4 && cases[i].yes[k]; k++)
            ck_assert_msg(full(re, cases[i].yes[k]), "/%s/ should match \"%s\"", cases[i].pattern,
                          cases[i].yes[k]);
        for (int k = 0; k < 4 && cases[i].no[k]; k++)
            ck_assert_msg(!full(re, cases[i].no[k]), "/%s/ should not match \"%s\"",
                          cases[i].pattern, cases[i].no[k]);
        charrnn_regex_free(re);
    }
}
END_TEST

/* Viable, live and dead: the states the sampler reads. */
START_TEST(viable_and_live)
{
    charrnn_regex *re = compile("ab?c|abd");
    ck_assert(charrnn_regex_viable(re, 0) && charrnn_regex_live(re, 0));
    int a = walk(re, "a"), ab = walk(re, "ab"), abc = walk(re, "abc");
    ck_assert(a >= 0 && ab >= 0 && abc >= 0);
    ck_assert(!charrnn_regex_accepting(re, ab) && charrnn_regex_live(re, ab));
    ck_assert(charrnn_regex_accepting(re, abc) && !charrnn_regex_live(re, abc));
    ck_assert_int_eq(walk(re, "aa"), -1);
    ck_assert_int_eq(walk(re, "abcd"), -1);
    charrnn_regex_free(re);
    /* accepting and live: a match that may go on */
    re = compile("a+");
    int aa = walk(re, "aa");
    ck_assert(charrnn_regex_accepting(re, aa) && charrnn_regex_live(re, aa));
    charrnn_regex_free(re);
    /* a dead branch is cut: "x" is not in the alphabet, so "a" leads nowhere */
    re = compile("ax|b");
    ck_assert_int_eq(walk(re, "a"), -1);
    ck_assert(full(re, "b"));
    charrnn_regex_free(re);
    /* the empty pattern: the empty text only, complete at once */
    re = compile("");
    ck_assert(charrnn_regex_accepting(re, 0) && !charrnn_regex_live(re, 0));
    charrnn_regex_free(re);
    /* nothing over the alphabet matches: the start is not viable */
    int rc;
    char err[CHARRNN_ERR_MAX];
    re = compile_over("x+", ALPHA, &rc, err);
    ck_assert_int_eq(rc, CHARRNN_OK);
    ck_assert(!charrnn_regex_viable(re, 0) && !charrnn_regex_live(re, 0));
    ck_assert_int_eq(charrnn_regex_next(re, 0, 0), -1);
    charrnn_regex_free(re);
}
END_TEST

/* Characters no set tells apart share one column: [a-z]{50} over a large
 * alphabet stays 51 states of two classes. */
START_TEST(compact)
{
    uint32_t cps[3000];
    for (int i = 0; i < 3000; i++)
        cps[i] = 32 + (uint32_t)i;
    charrnn_regex *re = NULL;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_regex_compile("[a-z]{50}", 9, cps, 3000, &re, err, sizeof err),
                     CHARRNN_OK);
    ck_assert_uint_eq(charrnn_regex_states(re), 51);
    const uint16_t *cls = charrnn_regex_classes(re);
    ck_assert_uint_eq(cls['a' - 32], cls['z' - 32]);
    ck_assert_uint_ne(cls['a' - 32], cls['A' - 32]);
    charrnn_regex_free(re);
}
END_TEST

START_TEST(errors)
{
    static const struct {
        const char *pattern;
        int rc;
        const char *msg;
    } cases[] = {
        {"(ab", CHARRNN_EINVAL, "at byte 0: '(' is never closed"},
        {"ab)", CHARRNN_EINVAL, "at byte 2: ')' closes no group"},
        {"a[bc", CHARRNN_EINVAL, "at byte 1: '[' is never closed"},
        {"[c-a]", CHARRNN_EINVAL, "range out of order"},
        {"a\\b", CHARRNN_EINVAL, "at byte 2: unsupported escape '\\b'"},
        {"a**", CHARRNN_EINVAL, "a quantifier directly after another"},
        {"*a", CHARRNN_EINVAL, "at byte 0: '*' has nothing to repeat"},
        {"a{2", CHARRNN_EINVAL, "at byte 1: '{' starts no repetition"},
        {"a{3,2}", CHARRNN_EINVAL, "out of order"},
        {"a^b", CHARRNN_EINVAL, "at byte 1: '^' only as the pattern's first"},
        {"(?=a)", CHARRNN_EINVAL, "'(?' other than '(?:'"},
        {"[[:alpha:]]", CHARRNN_EINVAL, "'[' inside a class"},
        {"[:a:]", CHARRNN_EINVAL, "POSIX"},
        {"a\\", CHARRNN_EINVAL, "lone '\\'"},
        {"\xff", CHARRNN_EINVAL, "invalid UTF-8"},
        {"a{1001}", CHARRNN_ERANGE, "too large: a repetition count above 1000"},
        {"(a{1000}){1000}", CHARRNN_ERANGE, "too large: more than 65536 automaton nodes"},
        {"[ab]*a[ab]{12}", CHARRNN_ERANGE, "too large: more than 4096 automaton states"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        char err[CHARRNN_ERR_MAX] = "";
        charrnn_regex *re = compile_over(cases[i].pattern, ALPHA, &rc, err);
        ck_assert_msg(rc == cases[i].rc && !re && strstr(err, cases[i].msg),
                      "/%s/: %d \"%s\", want %d \"%s\"", cases[i].pattern, rc, err, cases[i].rc,
                      cases[i].msg);
    }
    char big[CHARRNN_REGEX_MAX_LEN + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    int rc;
    char err[CHARRNN_ERR_MAX];
    ck_assert_ptr_null(compile_over(big, ALPHA, &rc, err));
    ck_assert_int_eq(rc, CHARRNN_ERANGE);
    /* nesting beyond the bound is refused, not a deep recursion */
    char deep[260];
    for (int i = 0; i < 120; i++)
        deep[i] = '(', deep[239 - i] = ')';
    deep[240] = 0;
    ck_assert_ptr_null(compile_over(deep, ALPHA, &rc, err));
    ck_assert_int_eq(rc, CHARRNN_ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "nested more than 100"));
}
END_TEST

/* ---- sampling ---- */

typedef struct {
    char text[4096];
    size_t n;
    charrnn_finish finish;
} run_out;

static void run(charrnn_model *m, charrnn_sample_params p, run_out *o)
{
    charrnn_stream *s;
    char err[CHARRNN_ERR_MAX];
    ck_assert_msg(charrnn_stream_create(m, &p, &s, err, sizeof err) == CHARRNN_OK, "%s", err);
    o->n = 0;
    while (!charrnn_stream_done(s)) {
        ck_assert_int_eq(charrnn_infer_step(m, 1, &s), CHARRNN_OK);
        o->n += (size_t)charrnn_stream_emit(s, o->text + o->n);
    }
    o->text[o->n] = 0;
    o->finish = charrnn_stream_finish_reason(s);
    charrnn_stream_free(s);
}

static charrnn_sample_params params(const char *prime, const char *regex, uint64_t seed)
{
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = prime, p.prime_len = strlen(prime);
    p.regex = regex, p.seed = seed, p.length = 300;
    return p;
}

/* A tight pattern always yields exactly its shape, then stops. */
START_TEST(tight_shape)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_LSTM, 16, 1, 7);
    for (uint64_t seed = 1; seed <= 60; seed++) {
        charrnn_sample_params p = params(seed % 2 ? "the " : "", "[0-3]{3};[0-3]{4}", seed);
        p.temperature = seed % 3 == 0 ? 0.0f : 1.5f;
        p.top_k = seed % 4 == 1 ? 3 : 0;
        p.top_p = seed % 5 == 2 ? 0.5f : 1.0f;
        p.min_p = seed % 7 == 3 ? 0.3f : 0.0f;
        run_out o;
        run(m, p, &o);
        ck_assert_msg(o.n == 8 && o.finish == CHARRNN_FINISH_STOP, "seed %d: \"%s\" (%s)",
                      (int)seed, o.text, charrnn_finish_name(o.finish));
        for (int i = 0; i < 8; i++)
            ck_assert_msg(i == 3 ? o.text[i] == ';' : o.text[i] >= '0' && o.text[i] <= '3',
                          "seed %d: \"%s\"", (int)seed, o.text);
    }
    charrnn_model_free(m);
}
END_TEST

/* Every text is a prefix of a match: a whole match when it stopped by
 * itself, whatever the other controls do. */
START_TEST(every_text_matches)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_GRU, 16, 2, 11);
    const int V = m->cfg.vocab_size;
    const char *pattern = "(the|fox) [a-z ]{0,30}(;|\n)";
    uint32_t cps[256];
    for (int v = 0; v < V; v++)
        cps[v] = charrnn_vocab_codepoint(m->vocab, (size_t)v);
    charrnn_regex *re = NULL;
    ck_assert_int_eq(charrnn_regex_compile(pattern, strlen(pattern), cps, (size_t)V, &re, NULL, 0),
                     CHARRNN_OK);
    int stops = 0;
    for (uint64_t seed = 1; seed <= 80; seed++) {
        charrnn_sample_params p = params(seed % 2 ? "" : "dogs ", pattern, seed);
        p.length = seed % 3 == 0 ? 12 : 300;
        p.repetition_penalty = seed % 4 == 0 ? 2.0f : 1.0f;
        int bias_id[1] = {charrnn_vocab_index(m->vocab, ';')};
        float bias_val[1] = {100.0f}; /* all but forces ';', which the mask bans early on */
        if (seed % 5 == 0)
            p.bias_id = bias_id, p.bias_val = bias_val, p.n_bias = 1;
        run_out o;
        run(m, p, &o);
        int st = 0;
        for (size_t i = 0; i < o.n && st >= 0;) {
            uint32_t cp;
            i += (size_t)charrnn_utf8_decode((const uint8_t *)o.text + i, o.n - i, &cp);
            st = charrnn_regex_next(re, st, (size_t)charrnn_vocab_index(m->vocab, cp));
        }
        ck_assert_msg(st >= 0, "seed %d: \"%s\" leaves the pattern", (int)seed, o.text);
        if (o.finish == CHARRNN_FINISH_STOP) {
            ck_assert_msg(charrnn_regex_accepting(re, st) && !charrnn_regex_live(re, st),
                          "seed %d: stopped on \"%s\"", (int)seed, o.text);
            stops++;
        } else {
            ck_assert_int_eq(o.finish, CHARRNN_FINISH_LENGTH);
        }
    }
    ck_assert_int_gt(stops, 20);
    charrnn_regex_free(re);
    charrnn_model_free(m);
}
END_TEST

/* temperature 0 takes the best allowed character, and the records are the
 * model's: the alternatives include characters the mask banned. */
START_TEST(argmax_and_records)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_LSTM, 16, 1, 3);
    const int V = m->cfg.vocab_size;
    charrnn_sample_params p = params("fox", "[a-f]{6}", 0);
    p.temperature = 0.0f, p.logprobs = 1, p.top_logprobs = V;
    charrnn_stream *s;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &s, NULL, 0), CHARRNN_OK);
    int banned_seen = 0, n = 0;
    while (!charrnn_stream_done(s)) {
        charrnn_infer_step(m, 1, &s);
        char b[4];
        if (!charrnn_stream_emit(s, b))
            continue;
        charrnn_logprob r;
        ck_assert(charrnn_stream_logprob(s, &r) && r.has_logprob);
        int first_allowed = -1;
        for (int i = 0; i < r.n_top && first_allowed < 0; i++) {
            uint32_t cp = charrnn_vocab_codepoint(m->vocab, (size_t)r.top_id[i]);
            if (cp >= 'a' && cp <= 'f')
                first_allowed = i;
            else
                banned_seen = 1;
        }
        ck_assert_int_eq(r.token, r.top_id[first_allowed]);
        ck_assert_float_eq(r.logprob, r.top_lp[first_allowed]);
        n++;
    }
    ck_assert_int_eq(n, 6);
    ck_assert_int_eq(charrnn_stream_finish_reason(s), CHARRNN_FINISH_STOP);
    ck_assert(banned_seen); /* a banned character ranked above an allowed one, reported */
    charrnn_stream_free(s);
    charrnn_model_free(m);
}
END_TEST

/* Unprimed, the first character is uniform over the allowed ones. */
START_TEST(first_uniform)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_LSTM, 8, 1, 5);
    int count[3] = {0};
    for (uint64_t seed = 0; seed < 600; seed++) {
        charrnn_sample_params p = params("", "[abc][a-z]*", seed);
        p.length = 1;
        run_out o;
        run(m, p, &o);
        ck_assert_msg(o.n == 1 && o.text[0] >= 'a' && o.text[0] <= 'c', "\"%s\"", o.text);
        count[o.text[0] - 'a']++;
    }
    for (int i = 0; i < 3; i++) /* 200 expected each; 5 sigma is about 58 */
        ck_assert_msg(count[i] > 140 && count[i] < 260, "%d %d %d", count[0], count[1], count[2]);
    charrnn_model_free(m);
}
END_TEST

/* Streams stepped together give each one's text alone (batch invariance);
 * resuming from a snapshot after the prime gives the same text too. */
START_TEST(batch_invariant)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_LSTM, 16, 2, 9);
    enum { N = 5 };
    charrnn_stream *ss[N];
    run_out alone[N];
    char got[N][4096];
    size_t n[N] = {0};
    for (int i = 0; i < N; i++) {
        charrnn_sample_params p = params("the quick ", i % 2 ? "[a-z ]+;" : NULL, (uint64_t)i);
        p.length = 40;
        run(m, p, &alone[i]);
        ck_assert_int_eq(charrnn_stream_create(m, &p, &ss[i], NULL, 0), CHARRNN_OK);
    }
    for (int done = 0; !done;) {
        charrnn_infer_step(m, N, ss);
        done = 1;
        for (int i = 0; i < N; i++) {
            n[i] += (size_t)charrnn_stream_emit(ss[i], got[i] + n[i]);
            done &= charrnn_stream_done(ss[i]);
        }
    }
    for (int i = 0; i < N; i++) {
        ck_assert_uint_eq(n[i], alone[i].n);
        ck_assert(!memcmp(got[i], alone[i].text, n[i]));
        charrnn_stream_free(ss[i]);
    }
    /* resume: a stream that read the prime lends its snapshot */
    charrnn_sample_params p = params("the quick ", "[a-z ]+;", 1);
    p.length = 40;
    charrnn_stream *a, *b;
    ck_assert_int_eq(charrnn_stream_create(m, &p, &a, NULL, 0), CHARRNN_OK);
    ck_assert_int_eq(charrnn_stream_create(m, &p, &b, NULL, 0), CHARRNN_OK);
    for (size_t i = 0; i < p.prime_len; i++)
        charrnn_infer_step(m, 1, &a);
    float *snap = malloc(charrnn_snapshot_floats(m) * sizeof *snap);
    ck_assert_int_eq(charrnn_stream_snapshot(a, snap), CHARRNN_OK);
    ck_assert_int_eq(charrnn_stream_resume(b, p.prime_len, snap), CHARRNN_OK);
    char t[4096];
    size_t k = 0;
    while (!charrnn_stream_done(b)) {
        charrnn_infer_step(m, 1, &b);
        k += (size_t)charrnn_stream_emit(b, t + k);
    }
    ck_assert_uint_eq(k, alone[1].n);
    ck_assert(!memcmp(t, alone[1].text, k));
    free(snap);
    charrnn_stream_free(a), charrnn_stream_free(b);
    charrnn_model_free(m);
}
END_TEST

/* The stream names the field: regex, with the three kinds of refusal. */
START_TEST(create_errors)
{
    charrnn_model *m = chaotic_model(CHARRNN_CELL_LSTM, 8, 1, 5);
    static const struct {
        const char *pattern;
        int rc;
        const char *msg;
    } cases[] = {
        {"(the", CHARRNN_EINVAL, "regex: does not compile: at byte 0"},
        {"a{5000}", CHARRNN_ERANGE, "regex: too large"},
        {"", CHARRNN_ERANGE, "regex: 0 bytes is out of range 1..1024"},
        {"%+", CHARRNN_ERANGE, "regex: cannot be satisfied"},
        {"()", CHARRNN_ERANGE, "regex: cannot be satisfied"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        charrnn_sample_params p = params("the", cases[i].pattern, 1);
        charrnn_stream *s = NULL;
        charrnn_sample_field f = CHARRNN_SAMPLE_NONE;
        char err[CHARRNN_ERR_MAX] = "";
        int rc = charrnn_stream_create_field(m, &p, &s, &f, err, sizeof err);
        ck_assert_msg(rc == cases[i].rc && !s && f == CHARRNN_SAMPLE_REGEX &&
                          strstr(err, cases[i].msg),
                      "/%s/: %d %d \"%s\"", cases[i].pattern, rc, (int)f, err);
    }
    ck_assert_str_eq(charrnn_sample_field_name(CHARRNN_SAMPLE_REGEX), "regex");
    charrnn_model_free(m);
}
END_TEST

int main(void)
{
    RUN_TESTS("regex", matches, viable_and_live, compact, errors, tight_shape, every_text_matches,
              argmax_and_records, first_uniform, batch_invariant, create_errors);
}
