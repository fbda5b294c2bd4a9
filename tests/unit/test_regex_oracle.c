/* charrnn's regex engine against PCRE2 (tests/lib/regex_oracle.h): random
 * patterns of the documented subset from a fixed seed, random texts over a
 * small alphabet; "whole match" and "prefix of a match" must agree for every
 * pair. The alphabet holds every literal the patterns use plus one character
 * of each kind they cannot name (a letter, a digit, a space, another), so
 * viability over it is viability over Unicode. */
#include "regex_oracle.h"

#include "charrnn/rng.h"
#include "check_run.h"

#include <stdlib.h>
#include <string.h>

/* Literals the patterns use (ranges stay inside a-c and 0-2), then the
 * representatives of what they cannot name. */
static const char LITS[] = "abc012 -.\n\t";
static const char ALPHA[] = "abc012 -.\n\tx7%\r";

typedef struct {
    charrnn_rng *r;
    char *out;
    size_t n, cap;
} gen;

static int pick(gen *g, int n)
{
    int v = (int)(charrnn_rng_uniform(g->r) * n);
    return v < n ? v : n - 1;
}

static void put(gen *g, const char *s)
{
    size_t k = strlen(s);
    if (g->n + k < g->cap)
        memcpy(g->out + g->n, s, k), g->n += k;
}

/* A literal as the pattern spells it (inside a class when in_class). */
static void put_lit(gen *g, char c, int in_class)
{
    char b[3] = {c, 0, 0};
    if (c == '\n')
        put(g, "\\n");
    else if (c == '\t')
        put(g, "\\t");
    else if (c == '.' || (c == '-' && in_class)) /* [.x.] would be POSIX syntax */
        b[0] = '\\', b[1] = c, put(g, b);
    else
        put(g, b);
}

static void gen_alt(gen *g, int depth);

static void gen_atom(gen *g, int depth)
{
    static const char *const classes[] = {"\\d", "\\w", "\\s", "\\D", "\\W", "\\S"};
    switch (pick(g, depth > 0 ? 6 : 4)) {
    case 0:
    case 1: put_lit(g, LITS[pick(g, (int)sizeof LITS - 1)], 0); break;
    case 2: put(g, pick(g, 3) ? classes[pick(g, 6)] : "."); break;
    case 3: {
        /* A negated class names no complement (\D, ...): [^\d\D] is
         * empty, and PCRE2's partial matching cannot see that no
         * character will ever do (it says "partial" at the end of the text). */
        int neg = pick(g, 3) == 0;
        put(g, neg ? "[^" : "[");
        for (int i = 0, n = 1 + pick(g, 3); i < n; i++) {
            int k = pick(g, 4);
            if (k == 0)
                put(g, pick(g, 2) ? "a-c" : (pick(g, 2) ? "b-c" : "0-1"));
            else if (k == 1)
                put(g, classes[pick(g, neg ? 3 : 6)]);
            else
                put_lit(g, LITS[pick(g, (int)sizeof LITS - 1)], 1);
        }
        put(g, "]");
        break;
    }
    default:
        put(g, pick(g, 2) ? "(" : "(?:");
        gen_alt(g, depth - 1);
        put(g, ")");
    }
    static const char *const quant[] = {"*", "+", "?", "{2}", "{1,}", "{0,2}", "{1,3}", "{0}"};
    if (pick(g, 3) == 0)
        put(g, quant[pick(g, 8)]);
}

static void gen_alt(gen *g, int depth)
{
    for (int a = 0, na = pick(g, 4) == 0 ? 2 : 1; a < na; a++) {
        if (a)
            put(g, "|");
        for (int i = 0, n = pick(g, 4); i < n; i++)
            gen_atom(g, depth);
    }
}

START_TEST(agrees_with_pcre2)
{
    uint32_t alpha[sizeof ALPHA - 1];
    const size_t A = sizeof ALPHA - 1;
    for (size_t i = 0; i < A; i++)
        alpha[i] = (uint8_t)ALPHA[i];
    charrnn_rng r;
    charrnn_rng_seed(&r, 20261205);
    char pat[512], why[512], err[CHARRNN_ERR_MAX];
    long texts = 0, matches = 0, viable_texts = 0;
    for (int t = 0; t < 3000; t++) {
        gen g = {&r, pat, 0, sizeof pat};
        gen_alt(&g, 2);
        pat[g.n] = 0;
        charrnn_regex *re = NULL;
        int rc = charrnn_regex_compile(pat, g.n, alpha, A, &re, err, sizeof err);
        if (rc == CHARRNN_ERANGE)
            continue; /* a large expansion: the limits have their own test */
        ck_assert_msg(rc == CHARRNN_OK, "/%s/: %s", pat, err);
        oracle o;
        ck_assert_msg(oracle_compile(&o, pat, g.n) == 0, "pcre2 refuses /%s/", pat);
        for (int k = 0; k < 40; k++) {
            int sym[8];
            size_t n = (size_t)pick(&g, 9);
            for (size_t i = 0; i < n; i++)
                sym[i] = pick(&g, (int)A);
            /* half the texts walk the automaton, so that long matches occur */
            for (size_t i = 0, st = 0; k % 2 && i < n; i++) {
                int ok[sizeof ALPHA], nok = 0;
                for (size_t s = 0; s < A; s++)
                    if (charrnn_regex_next(re, (int)st, s) >= 0)
                        ok[nok++] = (int)s;
                if (nok == 0) {
                    n = i;
                    break;
                }
                sym[i] = ok[pick(&g, nok)];
                st = (size_t)charrnn_regex_next(re, (int)st, (size_t)sym[i]);
            }
            ck_assert_msg(oracle_agree(&o, re, alpha, sym, n, why, sizeof why) == 0, "/%s/: %s",
                          pat, why);
            int full, v;
            ours_match(re, sym, n, &full, &v);
            texts++, matches += full, viable_texts += v;
        }
        oracle_free(&o);
        charrnn_regex_free(re);
    }
    /* the cases are not all trivially "no": a good share match or could */
    ck_assert_int_gt(matches, texts / 20);
    ck_assert_int_gt(viable_texts, texts / 5);
}
END_TEST

int main(void)
{
    RUN_TESTS("regex_oracle", agrees_with_pcre2);
}
