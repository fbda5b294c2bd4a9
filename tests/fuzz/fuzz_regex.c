/* libFuzzer harness: the regex engine (model/core/regex.c) against PCRE2
 * (tests/lib/regex_oracle.h).
 *
 * The input is a pattern, a NUL byte, then a text as pairs of bytes (each
 * one symbol of the alphabet). The alphabet holds every code point of the
 * pattern and its neighbours, the characters of its escapes and the edges
 * of \d \w \s and '.', so every
 * run of characters the pattern's sets tell apart has a member in it:
 * viability over the alphabet is viability over Unicode. When our compiler
 * accepts the pattern, PCRE2 must too, and for every prefix of the text and
 * of a walk that follows the automaton (so that long matches occur), "whole
 * match" and "prefix of a match" must agree. One exception: PCRE2's partial
 * match says "could go on" at the end of the text even when what follows
 * is an empty class ([^\d\D]), so with a negated class in the pattern only
 * "ours viable implies PCRE2 partial" is checked. */
#include "regex_oracle.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void add(uint32_t *a, size_t *n, uint32_t cp)
{
    if (cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF))
        a[(*n)++] = cp;
}

static void agree(const oracle *o, const charrnn_regex *re, const uint32_t *alpha, const int *sym,
                  size_t n, int one_way, const char *pat)
{
    char why[512];
    for (size_t k = 0; k <= n; k++) {
        if (oracle_agree(o, re, alpha, sym, k, why, sizeof why) == 0)
            continue;
        int full, viable;
        ours_match(re, sym, k, &full, &viable);
        if (one_way && !viable && full == 0) /* only PCRE2's "partial" may be wrong */
            continue;
        fprintf(stderr, "/%s/: %s\n", pat, why);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    if (plen > CHARRNN_REGEX_MAX_LEN)
        return 0;
    static uint32_t alpha[3 * CHARRNN_REGEX_MAX_LEN + 64];
    size_t A = 0;
    /* \t..\r: the escapes \t \n \r \f name them without writing them */
    static const uint32_t edges[] = {0,   '\t', '\n', 0x0B,  0x0C,   '\r',    0x0E,    ' ',
                                     '!', '0',  ':',  'A',   '[',    '_',     '`',     'a',
                                     '{', 0x7F, 0x80, 0x3B1, 0xFFFF, 0x10000, 0x10FFFF};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        add(alpha, &A, edges[i]);
    for (size_t i = 0; i < plen;) {
        uint32_t cp;
        int k = charrnn_utf8_decode(data + i, plen - i, &cp);
        if (k == 0)
            return 0; /* invalid UTF-8: our compiler refuses it (the unit test says so) */
        add(alpha, &A, cp - 1), add(alpha, &A, cp), add(alpha, &A, cp + 1);
        i += (size_t)k;
    }
    qsort(alpha, A, sizeof *alpha, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < A; i++)
        if (u == 0 || alpha[i] != alpha[u - 1])
            alpha[u++] = alpha[i];
    A = u;

    char pat[CHARRNN_REGEX_MAX_LEN + 1];
    memcpy(pat, data, plen);
    pat[plen] = 0;
    charrnn_regex *re = NULL;
    char err[CHARRNN_ERR_MAX];
    int rc = charrnn_regex_compile(pat, plen, alpha, A, &re, err, sizeof err);
    if (rc != CHARRNN_OK) {
        if (!err[0] || rc == CHARRNN_OK)
            abort(); /* a refusal always says why */
        return 0;
    }
    oracle o;
    if (oracle_compile(&o, pat, plen) != 0) {
        fprintf(stderr, "/%s/: ours compiles, PCRE2 refuses\n", pat);
        abort();
    }
    int one_way = strstr(pat, "[^") != NULL;
    int sym[64], walk[64];
    size_t n = 0, w = 0;
    const uint8_t *t = nul ? nul + 1 : data + size;
    size_t tn = nul ? size - plen - 1 : 0;
    int st = 0;
    for (size_t i = 0; i + 1 < tn && n < 64; i += 2) {
        unsigned v = (unsigned)t[i] << 8 | t[i + 1];
        sym[n++] = (int)(v % A);
        if (st < 0)
            continue;
        int ok = 0; /* the walk: the (v mod allowed)-th allowed symbol */
        for (size_t s = 0; s < A; s++)
            ok += charrnn_regex_next(re, st, s) >= 0;
        if (ok == 0) {
            st = -1;
            continue;
        }
        int k = (int)(v % (unsigned)ok);
        for (size_t s = 0; s < A; s++)
            if (charrnn_regex_next(re, st, s) >= 0 && k-- == 0) {
                walk[w++] = (int)s;
                st = charrnn_regex_next(re, st, s);
                break;
            }
    }
    agree(&o, re, alpha, sym, n, one_way, pat);
    agree(&o, re, alpha, walk, w, one_way, pat);
    oracle_free(&o);
    charrnn_regex_free(re);
    return 0;
}
