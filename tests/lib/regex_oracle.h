/* PCRE2 as the oracle of charrnn's regex engine (model/core/regex.c): for a
 * pattern and a text over an alphabet, "the text matches" and "the text can
 * still become a match" must agree with PCRE2's anchored full match and its
 * hard partial match. Shared by the unit test (test_regex_oracle.c, random
 * patterns from a fixed seed) and the fuzz target (tests/fuzz/fuzz_regex.c).
 *
 * The alphabets the callers use hold a representative of every class of
 * characters their patterns can tell apart, so viability over the alphabet
 * equals viability over all of Unicode, which is what PCRE2 answers. */
#ifndef CHARRNN_TESTS_REGEX_ORACLE_H
#define CHARRNN_TESTS_REGEX_ORACLE_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "charrnn/regex.h"
#include "charrnn/status.h"
#include "charrnn/vocab.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

/* code: the pattern, for whole matches (anchored at both ends). tail: the
 * pattern followed by \z, for prefixes: PCRE2 refuses PCRE2_ENDANCHORED with
 * partial matching, and without it a hard partial match of ab|abcd on "abc"
 * stops at the complete match "ab"; with \z every path must reach the end of
 * the text, where a hard partial match reports "could go on". */
typedef struct oracle {
    pcre2_code *code, *tail;
    pcre2_match_data *md;
} oracle;

static inline pcre2_code *oracle_code(const char *pattern, size_t len)
{
    int e;
    PCRE2_SIZE off;
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    pcre2_code *c =
        pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &e, &off, cc);
    pcre2_compile_context_free(cc);
    return c;
}

/* Compiles pattern for PCRE2: UTF, \n the only newline (so '.' is [^\n] as
 * ours is). 0, or -1 when PCRE2 refuses it. */
static inline int oracle_compile(oracle *o, const char *pattern, size_t len)
{
    char wrapped[CHARRNN_REGEX_MAX_LEN + 16];
    o->code = oracle_code(pattern, len);
    o->tail = NULL, o->md = NULL;
    if (!o->code || len > CHARRNN_REGEX_MAX_LEN)
        return -1;
    memcpy(wrapped, "(?:", 3);
    memcpy(wrapped + 3, pattern, len);
    memcpy(wrapped + 3 + len, ")\\z", 4);
    o->tail = oracle_code(wrapped, len + 7);
    o->md = pcre2_match_data_create_from_pattern(o->code, NULL);
    return o->tail && o->md ? 0 : -1;
}

static inline void oracle_free(oracle *o)
{
    pcre2_match_data_free(o->md);
    pcre2_code_free(o->code);
    pcre2_code_free(o->tail);
}

/* 1 when text is a whole match (partial = 0), or a prefix of one (partial = 1). */
static inline int oracle_match(const oracle *o, const char *text, size_t len, int partial)
{
    if (!partial)
        return pcre2_match(o->code, (PCRE2_SPTR)text, len, 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                           o->md, NULL) >= 0;
    int rc = pcre2_match(o->tail, (PCRE2_SPTR)text, len, 0, PCRE2_ANCHORED | PCRE2_PARTIAL_HARD,
                         o->md, NULL);
    return rc >= 0 || rc == PCRE2_ERROR_PARTIAL;
}

/* Ours on the same text of symbols (indices into the compiled alphabet):
 * *full and *viable. */
static inline void ours_match(const charrnn_regex *re, const int *sym, size_t n, int *full,
                              int *viable)
{
    int st = 0;
    for (size_t i = 0; i < n && st >= 0; i++)
        st = charrnn_regex_next(re, st, (size_t)sym[i]);
    *full = st >= 0 && charrnn_regex_accepting(re, st);
    *viable = st >= 0 && charrnn_regex_viable(re, st);
}

/* Checks one text; 0 when both agree, else -1 with why filled. */
static inline int oracle_agree(const oracle *o, const charrnn_regex *re, const uint32_t *alpha,
                               const int *sym, size_t n, char *why, size_t whylen)
{
    char text[4 * 64 + 1];
    size_t len = 0;
    for (size_t i = 0; i < n && i < 64; i++)
        len += (size_t)charrnn_utf8_encode(alpha[sym[i]], text + len);
    int full, viable;
    ours_match(re, sym, n, &full, &viable);
    int pf = oracle_match(o, text, len, 0);
    /* PCRE2 reports a partial match of an empty subject only when its
     * pattern inspects the end there; the empty text is a prefix of a match
     * exactly when something matches, which the non-empty texts check. */
    int pv = len == 0 ? viable : oracle_match(o, text, len, 1);
    if (full == pf && viable == pv)
        return 0;
    snprintf(why, whylen, "text \"%.*s\": full %d (pcre2 %d), viable %d (pcre2 %d)", (int)len, text,
             full, pf, viable, pv);
    return -1;
}

#endif
