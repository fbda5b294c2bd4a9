/* UTF-8 and the vocabulary (vocab.h), and its JSON form (vocab_json.h). */
#include "testutil.h"

#include <string.h>

/* ---- UTF-8 ------------------------------------------------------------- */

static int dec(const char *s, size_t n, uint32_t *cp)
{
    return charrnn_utf8_decode((const uint8_t *)s, n, cp);
}

START_TEST(utf8_decode_valid)
{
    static const struct {
        const char *s;
        int len;
        uint32_t cp;
    } ok[] = {
        {"A", 1, 0x41},
        {"\x7F", 1, 0x7F},
        {"\xC2\x80", 2, 0x80},
        {"\xC3\xA9", 2, 0xE9},
        {"\xDF\xBF", 2, 0x7FF},
        {"\xE0\xA0\x80", 3, 0x800},
        {"\xE2\x82\xAC", 3, 0x20AC},
        {"\xED\x9F\xBF", 3, 0xD7FF},
        {"\xEE\x80\x80", 3, 0xE000},
        {"\xEF\xBF\xBF", 3, 0xFFFF},
        {"\xF0\x90\x80\x80", 4, 0x10000},
        {"\xF0\x9F\x98\x80", 4, 0x1F600},
        {"\xF4\x8F\xBF\xBF", 4, 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint32_t cp = 0;
        /* Extra bytes after the character are not consumed. */
        char buf[8] = {0};
        memcpy(buf, ok[i].s, (size_t)ok[i].len);
        buf[ok[i].len] = 'x';
        ck_assert_int_eq(dec(buf, (size_t)ok[i].len + 1, &cp), ok[i].len);
        ck_assert_uint_eq(cp, ok[i].cp);
    }
    uint32_t cp;
    ck_assert_int_eq(dec("\0", 1, &cp), 1);
    ck_assert_uint_eq(cp, 0);
}
END_TEST

START_TEST(utf8_decode_rejects)
{
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"", 0},
        /* overlong forms */
        {"\xC0\x80", 2},
        {"\xC1\xBF", 2},
        {"\xE0\x80\x80", 3},
        {"\xE0\x9F\xBF", 3},
        {"\xF0\x80\x80\x80", 4},
        {"\xF0\x8F\xBF\xBF", 4},
        /* UTF-16 surrogates */
        {"\xED\xA0\x80", 3},
        {"\xED\xAD\xBF", 3},
        {"\xED\xB0\x80", 3},
        {"\xED\xBF\xBF", 3},
        /* beyond U+10FFFF and bytes that never start a character */
        {"\xF4\x90\x80\x80", 4},
        {"\xF5\x80\x80\x80", 4},
        {"\xF7\xBF\xBF\xBF", 4},
        {"\xF8\x88\x80\x80\x80", 5},
        {"\xFC\x84\x80\x80\x80\x80", 6},
        {"\xFE", 1},
        {"\xFF", 1},
        /* lone continuation bytes */
        {"\x80", 1},
        {"\xBF", 1},
        /* truncated sequences */
        {"\xC3", 1},
        {"\xE2\x82", 2},
        {"\xE2", 1},
        {"\xF0\x9F\x98", 3},
        {"\xF0\x9F", 2},
        /* a non-continuation byte inside a sequence */
        {"\xC3\x41", 2},
        {"\xE2\x28\xA1", 3},
        {"\xE2\x82\x28", 3},
        {"\xF0\x9F\x98\x41", 4},
        {"\xC3\xC3", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t cp = 12345;
        ck_assert_msg(dec(bad[i].s, bad[i].n, &cp) == 0, "case %zu accepted", i);
    }
}
END_TEST

/* Every Unicode scalar value encodes to the shortest form and decodes back. */
START_TEST(utf8_round_trip_exhaustive)
{
    /* Plain comparisons in the loop: each ck_assert writes to Check's pipe. */
    char buf[4];
    uint32_t bad = 0, nbad = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        int want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        int n = charrnn_utf8_encode(cp, buf);
        uint32_t back = 0xFFFFFFFF, dummy;
        int ok = n == want && charrnn_utf8_decode((const uint8_t *)buf, (size_t)n, &back) == n &&
            back == cp &&
            /* one byte short is always truncated */
            (n == 1 || charrnn_utf8_decode((const uint8_t *)buf, (size_t)n - 1, &dummy) == 0);
        if (!ok && nbad++ == 0)
            bad = cp;
    }
    ck_assert_msg(nbad == 0, "%u code points fail, the first U+%04X", nbad, bad);
}
END_TEST

/* ---- the vocabulary ---------------------------------------------------- */

static void assert_vocab(const charrnn_vocab *v, const uint32_t *cps, size_t n)
{
    ck_assert_uint_eq(charrnn_vocab_size(v), n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(charrnn_vocab_codepoint(v, i), cps[i]);
        ck_assert_int_eq(charrnn_vocab_index(v, cps[i]), (int)i);
    }
}

START_TEST(vocab_sorted_code_points)
{
    const char text[] = "z\xF0\x9F\x98\x80"
                        "a\xE2\x82\xAC\xC3\xA9 a\xC3\xA9z";
    charrnn_vocab *v = text_vocab(text, sizeof text - 1);
    static const uint32_t want[] = {' ', 'a', 'z', 0xE9, 0x20AC, 0x1F600};
    assert_vocab(v, want, 6);
    ck_assert_int_eq(charrnn_vocab_index(v, 'b'), -1);
    ck_assert_int_eq(charrnn_vocab_index(v, 0x20AD), -1);
    ck_assert_int_eq(charrnn_vocab_index(v, 0x10FFFF), -1);
    charrnn_vocab_free(v);
}
END_TEST

/* A plain ASCII text gives char-rnn's byte vocabulary: the sorted distinct bytes. */
START_TEST(vocab_ascii_is_bytes)
{
    char text[4000];
    charrnn_rng r;
    charrnn_rng_seed(&r, 4);
    int seen[128] = {0};
    for (size_t i = 0; i < sizeof text; i++) {
        text[i] = (char)(charrnn_rng_u64(&r) % 100 + (i % 7 == 0 ? 1 : 20)); /* 1..119, no NUL */
        seen[(int)text[i]] = 1;
    }
    charrnn_vocab *v = text_vocab(text, sizeof text);
    uint32_t want[128];
    size_t n = 0;
    for (int c = 0; c < 128; c++)
        if (seen[c])
            want[n++] = (uint32_t)c;
    assert_vocab(v, want, n);
    uint16_t *tok = malloc(sizeof text * sizeof *tok);
    size_t count;
    ck_assert_int_eq(
        charrnn_vocab_encode(v, (const uint8_t *)text, sizeof text, 1, tok, &count, NULL, 0),
        CHARRNN_OK);
    ck_assert_uint_eq(count, sizeof text);
    for (size_t i = 0; i < count; i++)
        ck_assert_uint_eq(charrnn_vocab_codepoint(v, tok[i]), (uint8_t)text[i]);
    free(tok);
    charrnn_vocab_free(v);
}
END_TEST

START_TEST(vocab_bom_and_line_endings)
{
    /* A leading BOM is not a character; CR, CRLF and LF are kept as they are;
     * a BOM elsewhere is an ordinary character (U+FEFF). */
    const char text[] = "\xEF\xBB\xBF"
                        "a\r\nb\rc\nd\xEF\xBB\xBF";
    ck_assert_uint_eq(charrnn_utf8_bom_len((const uint8_t *)text, sizeof text - 1), 3);
    ck_assert_uint_eq(charrnn_utf8_bom_len((const uint8_t *)"\xEF\xBB", 2), 0);
    ck_assert_uint_eq(charrnn_utf8_bom_len((const uint8_t *)"a\xEF\xBB\xBF", 4), 0);
    charrnn_vocab *v = text_vocab(text, sizeof text - 1);
    static const uint32_t want[] = {'\n', '\r', 'a', 'b', 'c', 'd', 0xFEFF};
    assert_vocab(v, want, 7);
    uint16_t tok[32];
    size_t count;
    ck_assert_int_eq(
        charrnn_vocab_encode(v, (const uint8_t *)text, sizeof text - 1, 1, tok, &count, NULL, 0),
        CHARRNN_OK);
    static const uint32_t seq[] = {'a', '\r', '\n', 'b', '\r', 'c', '\n', 'd', 0xFEFF};
    ck_assert_uint_eq(count, 9);
    for (size_t i = 0; i < count; i++)
        ck_assert_uint_eq(charrnn_vocab_codepoint(v, tok[i]), seq[i]);
    /* Without skip_bom the leading BOM is a character too. */
    ck_assert_int_eq(
        charrnn_vocab_encode(v, (const uint8_t *)text, sizeof text - 1, 0, tok, &count, NULL, 0),
        CHARRNN_OK);
    ck_assert_uint_eq(count, 10);
    charrnn_vocab_free(v);
    /* Only a BOM: nothing left. */
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_vocab_build((const uint8_t *)"\xEF\xBB\xBF", 3, &v, err, sizeof err),
                     CHARRNN_EINVAL);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(charrnn_vocab_build((const uint8_t *)"", 0, &v, err, sizeof err),
                     CHARRNN_EINVAL);
    ck_assert_msg(strstr(err, "empty"), "%s", err);
}
END_TEST

START_TEST(vocab_invalid_utf8_names_offset)
{
    static const struct {
        const char *s;
        size_t n;
        const char *want;
    } cases[] = {
        {"abc\xC3(", 5, "invalid UTF-8 at byte offset 3 (byte 0xC3)"},
        {"\xFF", 1, "invalid UTF-8 at byte offset 0 (byte 0xFF)"},
        {"\xEF\xBB\xBF"
         "ab\xFF",
         6, "invalid UTF-8 at byte offset 5"}, /* offsets count the BOM */
        {"\xC3\xA9\xE2\x82\xAC\xED\xA0\x80", 8, "invalid UTF-8 at byte offset 5 (byte 0xED)"},
        {"hello\xF0\x9F\x98", 8, "invalid UTF-8 at byte offset 5"}, /* truncated at the end */
        {"x\xC0\x80", 3, "invalid UTF-8 at byte offset 1 (byte 0xC0)"},
        /* NUL: responses are C strings, where it would end the text. */
        {"ab\0c", 4, "U+0000 (NUL) at byte offset 2: text may not hold NUL characters"},
        {"\xEF\xBB\xBF\xC3\xA9\0", 6, "U+0000 (NUL) at byte offset 5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        charrnn_vocab *v = (charrnn_vocab *)1;
        char err[CHARRNN_ERR_MAX] = "";
        ck_assert_int_eq(
            charrnn_vocab_build((const uint8_t *)cases[i].s, cases[i].n, &v, err, sizeof err),
            CHARRNN_EFORMAT);
        ck_assert_ptr_null(v);
        ck_assert_msg(strstr(err, cases[i].want), "case %zu: \"%s\" lacks \"%s\"", i, err,
                      cases[i].want);
        /* encode reports the same offset */
        charrnn_vocab *ab = text_vocab("ab", 2);
        uint16_t tok[16];
        size_t count;
        err[0] = 0;
        ck_assert_int_eq(charrnn_vocab_encode(ab, (const uint8_t *)cases[i].s, cases[i].n, 1, tok,
                                              &count, err, sizeof err),
                         CHARRNN_EFORMAT);
        ck_assert_msg(strstr(err, cases[i].want), "encode %zu: \"%s\"", i, err);
        charrnn_vocab_free(ab);
    }
}
END_TEST

START_TEST(vocab_encode_names_unknown)
{
    charrnn_vocab *v = text_vocab("abc", 3);
    uint16_t tok[64];
    size_t count;
    char err[CHARRNN_ERR_MAX];
    const char text[] = "abxc\xE2\x82\xAC\nx";
    ck_assert_int_eq(charrnn_vocab_encode(v, (const uint8_t *)text, sizeof text - 1, 1, tok, &count,
                                          err, sizeof err),
                     CHARRNN_EVOCAB);
    ck_assert_msg(strstr(err, "3 characters are not in the model's vocabulary"), "%s", err);
    ck_assert_msg(strstr(err, "'x' (U+0078)"), "%s", err);
    ck_assert_msg(strstr(err, "U+20AC"), "%s", err);
    ck_assert_msg(strstr(err, "U+000A"), "%s", err); /* control characters by code point */
    ck_assert_int_eq(
        charrnn_vocab_encode(v, (const uint8_t *)"q", 1, 1, tok, &count, err, sizeof err),
        CHARRNN_EVOCAB);
    ck_assert_msg(strstr(err, "1 character is not in the model's vocabulary: 'q' (U+0071)"), "%s",
                  err);
    charrnn_vocab_free(v);
}
END_TEST

START_TEST(vocab_json_round_trip)
{
    const char text[] = "\"\\/\n\t\r \x01\x1F\x7F"
                        "abc\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xEF\xBF\xBF";
    charrnn_vocab *v = text_vocab(text, sizeof text - 1), *back;
    char *json = charrnn_vocab_to_json(v);
    ck_assert_ptr_nonnull(json);
    char err[CHARRNN_ERR_MAX];
    ck_assert_msg(charrnn_vocab_from_json(json, &back, err, sizeof err) == CHARRNN_OK, "%s", err);
    ck_assert_uint_eq(charrnn_vocab_size(back), charrnn_vocab_size(v));
    for (size_t i = 0; i < charrnn_vocab_size(v); i++)
        ck_assert_uint_eq(charrnn_vocab_codepoint(back, i), charrnn_vocab_codepoint(v, i));
    free(json);
    charrnn_vocab_free(back);
    charrnn_vocab_free(v);
}
END_TEST

START_TEST(vocab_from_codepoints_rejects)
{
    charrnn_vocab *v;
    char err[CHARRNN_ERR_MAX];
    const uint32_t sur[] = {'a', 0xD800}, big[] = {'a', 0x110000}, uns[] = {'b', 'a'},
                   dup[] = {'a', 'a'};
    ck_assert_int_eq(charrnn_vocab_from_codepoints(sur, 2, &v, err, sizeof err), CHARRNN_EFORMAT);
    ck_assert_int_eq(charrnn_vocab_from_codepoints(big, 2, &v, err, sizeof err), CHARRNN_EFORMAT);
    ck_assert_int_eq(charrnn_vocab_from_codepoints(uns, 2, &v, err, sizeof err), CHARRNN_EFORMAT);
    ck_assert_int_eq(charrnn_vocab_from_codepoints(dup, 2, &v, err, sizeof err), CHARRNN_EFORMAT);
    ck_assert_int_eq(charrnn_vocab_from_codepoints(dup, 0, &v, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_ptr_null(v);
    const uint32_t nul[] = {0, 'a'};
    ck_assert_int_eq(charrnn_vocab_from_codepoints(nul, 2, &v, err, sizeof err), CHARRNN_EFORMAT);
    ck_assert_msg(strstr(err, "vocabulary entry 0 is U+0000 (NUL)"), "%s", err);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(charrnn_vocab_from_json("[\"a\",\"\\u0000\"]", &v, err, sizeof err),
                     CHARRNN_EFORMAT);
    ck_assert_msg(strstr(err, "vocab entry 1 is U+0000 (NUL) or empty"), "%s", err);
    ck_assert_ptr_null(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vocab");
    ADD_CASE(s, "utf8", utf8_decode_valid, utf8_decode_rejects, utf8_round_trip_exhaustive);
    ADD_CASE(s, "vocab", vocab_sorted_code_points, vocab_ascii_is_bytes, vocab_bom_and_line_endings,
             vocab_invalid_utf8_names_offset, vocab_encode_names_unknown, vocab_json_round_trip,
             vocab_from_codepoints_rejects);
    return run_suite(s);
}
