/* Text in, text out: UTF-8 and the vocabulary (vocab.h), the corpus, split and
 * batching (data.h), the sampler's contracts (sampler.h) and the optimizer
 * helpers (optim.h, session.h's learning-rate schedule). */
#include "testutil.h"

#include "charrnn/data.h"
#include "charrnn/session.h"

#include <cblas.h>
#include <string.h>
#include <unistd.h>

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

static charrnn_vocab *build(const char *text, size_t n)
{
    charrnn_vocab *v;
    char err[CHARRNN_ERR_MAX];
    ck_assert_msg(charrnn_vocab_build((const uint8_t *)text, n, &v, err, sizeof err) == CHARRNN_OK,
                  "%s", err);
    return v;
}

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
    charrnn_vocab *v = build(text, sizeof text - 1);
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
        text[i] = (char)(charrnn_rng_u64(&r) % 100 + (i % 7 == 0 ? 0 : 20)); /* 0..119 */
        seen[(int)text[i]] = 1;
    }
    charrnn_vocab *v = build(text, sizeof text);
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
    charrnn_vocab *v = build(text, sizeof text - 1);
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
        charrnn_vocab *ab = build("ab", 2);
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
    charrnn_vocab *v = build("abc", 3);
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
    charrnn_vocab *v = build(text, sizeof text - 1), *back;
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
}
END_TEST

/* ---- corpus, split, batches -------------------------------------------- */

static char *write_tmp(const void *data, size_t len)
{
    char *path = strdup("/tmp/charrnn-corpus-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

START_TEST(corpus_errors)
{
    charrnn_corpus *c = (charrnn_corpus *)1;
    char err[CHARRNN_ERR_MAX];
    ck_assert_int_eq(charrnn_corpus_load("/nonexistent/data.txt", NULL, &c, err, sizeof err),
                     CHARRNN_ENOTFOUND);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "/nonexistent/data.txt"), "%s", err);

    char *empty = write_tmp("", 0);
    ck_assert_int_eq(charrnn_corpus_load(empty, NULL, &c, err, sizeof err), CHARRNN_EINVAL);
    ck_assert_msg(strstr(err, empty) && strstr(err, "empty"), "%s", err);
    unlink(empty), free(empty);

    char *bad = write_tmp("hello\nw\xF0\x28\x8C\x28rld", 14);
    ck_assert_int_eq(charrnn_corpus_load(bad, NULL, &c, err, sizeof err), CHARRNN_EFORMAT);
    ck_assert_msg(strstr(err, bad) && strstr(err, "invalid UTF-8 at byte offset 7"), "%s", err);
    ck_assert_ptr_null(c);
    unlink(bad), free(bad);

    /* With a given vocabulary (resume), characters outside it are named. */
    char *other = write_tmp("abz", 3);
    charrnn_vocab *ab = build("ab", 2);
    ck_assert_int_eq(charrnn_corpus_load(other, ab, &c, err, sizeof err), CHARRNN_EVOCAB);
    ck_assert_msg(strstr(err, "'z'"), "%s", err);
    charrnn_vocab_free(ab);
    unlink(other), free(other);
}
END_TEST

START_TEST(corpus_load_and_split)
{
    /* 1000 characters (BOM excluded), some of them multi-byte. */
    char text[4096];
    size_t len = 0;
    len += (size_t)sprintf(text, "\xEF\xBB\xBF");
    for (int i = 0; i < 1000; i++) {
        if (i % 10 == 9)
            len += (size_t)sprintf(text + len, "\xC3\xA9");
        else
            text[len++] = (char)('a' + (i * 7) % 13);
    }
    char *path = write_tmp(text, len);
    charrnn_corpus *c;
    char err[CHARRNN_ERR_MAX], hex[65];
    ck_assert_msg(charrnn_corpus_load(path, NULL, &c, err, sizeof err) == CHARRNN_OK, "%s", err);
    ck_assert_uint_eq(c->n, 1000);
    ck_assert_uint_eq(c->bytes, len);
    charrnn_sha256_hex(text, len, hex);
    ck_assert_str_eq(c->sha256, hex);
    for (int i = 0; i < 1000; i++) {
        uint32_t want = i % 10 == 9 ? 0xE9 : (uint32_t)('a' + (i * 7) % 13);
        ck_assert_uint_eq(charrnn_vocab_codepoint(c->vocab, c->tokens[i]), want);
    }

    /* Contiguous 90/5/5 split, in order. */
    charrnn_split s[3];
    const int B = 4, T = 10;
    ck_assert_int_eq(charrnn_split_make(c, 0.9, 0.05, B, T, s, err, sizeof err), CHARRNN_OK);
    ck_assert_ptr_eq(s[0].tok, c->tokens);
    ck_assert_uint_eq(s[0].n, 900);
    ck_assert_ptr_eq(s[1].tok, c->tokens + 900);
    ck_assert_uint_eq(s[1].n, 50);
    ck_assert_ptr_eq(s[2].tok, c->tokens + 950);
    ck_assert_uint_eq(s[2].n, 50);
    for (int k = 0; k < 3; k++)
        ck_assert_uint_eq(s[k].nbatches, (s[k].n - 1) / (B * T));
    ck_assert_uint_eq(s[0].nbatches, 22);
    ck_assert_uint_eq(s[1].nbatches, 1);

    /* Window j, stream b reads characters b*nb*T + j*T + t (x) and the next one (y). */
    uint16_t x[B * T], y[B * T];
    const size_t nb = s[0].nbatches;
    for (size_t j = 0; j < nb; j++) {
        charrnn_split_batch(&s[0], j, x, y);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                size_t at = (size_t)b * nb * T + j * T + (size_t)t;
                ck_assert_uint_eq(x[t * B + b], c->tokens[at]);
                ck_assert_uint_eq(y[t * B + b], c->tokens[at + 1]);
            }
    }
    /* Every y stays inside the split: the last stream's last target is character nb*B*T. */
    ck_assert_uint_le((size_t)B * nb * T, s[0].n - 1);

    /* An empty validation split is allowed; a bad fraction is not. */
    ck_assert_int_eq(charrnn_split_make(c, 1.0, 0.0, B, T, s, err, sizeof err), CHARRNN_OK);
    ck_assert_uint_eq(s[1].n + s[2].n, 0);
    ck_assert_uint_eq(s[1].nbatches, 0);
    ck_assert_int_eq(charrnn_split_make(c, 0.0, 0.05, B, T, s, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_int_eq(charrnn_split_make(c, 0.9, -0.1, B, T, s, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_int_eq(charrnn_split_make(c, 0.9, 0.2, B, T, s, err, sizeof err), CHARRNN_ERANGE);

    /* Too small for one batch: 900 training characters, one window needs B*T+1. */
    ck_assert_int_eq(charrnn_split_make(c, 0.9, 0.05, 30, 30, s, err, sizeof err), CHARRNN_ERANGE);
    ck_assert_msg(strstr(err,
                         "the training split has 900 characters; one batch of 30 x 30 needs "
                         "at least 901"),
                  "%s", err);
    ck_assert_int_eq(charrnn_split_make(c, 0.9, 0.05, 1, 899, s, err, sizeof err), CHARRNN_OK);
    ck_assert_int_eq(charrnn_split_make(c, 0.9, 0.05, 1, 900, s, err, sizeof err), CHARRNN_ERANGE);
    charrnn_corpus_free(c);
    unlink(path), free(path);
}
END_TEST

START_TEST(sha256_vectors)
{
    /* FIPS 180-2 test vectors. */
    char hex[65];
    charrnn_sha256_hex("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    charrnn_sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    charrnn_sha256_hex(two, strlen(two), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

/* ---- sampler ----------------------------------------------------------- */

static charrnn_model *sampler_model(void)
{
    const char text[] = "the quick brown fox \xC3\xA9\xE2\x82\xAC\n";
    charrnn_vocab *v = build(text, sizeof text - 1);
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
        charrnn_infer_step(m, 1, &s);
        o->len += (size_t)charrnn_stream_emit(s, o->text + o->len);
        ck_assert_uint_lt(o->len, sizeof o->text - 8);
    }
    o->text[o->len] = 0;
    o->finish = charrnn_stream_finish_reason(s);
    o->generated = charrnn_stream_generated_chars(s);
    charrnn_stream_free(s);
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
    charrnn_stream *s[NS], *active[NS];
    char err[CHARRNN_ERR_MAX];
    for (int i = 0; i < NS; i++) {
        ck_assert_int_eq(charrnn_stream_create(m, &ps[i], &s[i], err, sizeof err), CHARRNN_OK);
        together[i].len = 0;
    }
    for (;;) {
        size_t n = 0;
        for (int i = 0; i < NS; i++)
            if (!charrnn_stream_done(s[i]))
                active[n++] = s[i];
        if (n == 0)
            break;
        charrnn_infer_step(m, n, active);
        for (int i = 0; i < NS; i++)
            for (size_t k = 0; k < n; k++)
                if (active[k] == s[i])
                    together[i].len +=
                        (size_t)charrnn_stream_emit(s[i], together[i].text + together[i].len);
    }
    for (int i = 0; i < NS; i++) {
        together[i].text[together[i].len] = 0;
        ck_assert_msg(together[i].len == alone[i].len &&
                          memcmp(together[i].text, alone[i].text, alone[i].len) == 0,
                      "stream %d differs when batched", i);
        charrnn_stream_free(s[i]);
    }
    charrnn_model_free(m);
}
END_TEST

/* ---- optimizer helpers ------------------------------------------------- */

START_TEST(lr_schedule)
{
    /* char-rnn: after iteration i = e*ipe (epoch e done), if e >= decay_after, lr *= decay. */
    static const double afters[] = {0.0, 1.0, 2.5, 3.0, 10.0};
    const long ipe = 7;
    for (size_t a = 0; a < sizeof afters / sizeof afters[0]; a++) {
        double lr = 2e-3;
        for (long i = 1; i <= 6 * ipe; i++) {
            float got = charrnn_lr_at(2e-3f, 0.5f, afters[a], ipe, i);
            ck_assert_msg(fabs(got - lr) <= 1e-7 * lr, "after %g, i %ld: %g vs %g", afters[a], i,
                          (double)got, lr);
            if (i % ipe == 0 && (double)(i / ipe) >= afters[a])
                lr *= 0.5;
        }
    }
    /* decay 1 (off) is constant */
    ck_assert(charrnn_lr_at(1e-3f, 1.0f, 0.0, 5, 1000) == 1e-3f);
}
END_TEST

START_TEST(clip_grad_value)
{
    float g[] = {-10.0f, -5.0f, -4.999f, 0.0f, 3.0f, 5.0f, 5.001f, 1e30f, -INFINITY};
    const float want[] = {-5.0f, -5.0f, -4.999f, 0.0f, 3.0f, 5.0f, 5.0f, 5.0f, -5.0f};
    charrnn_clip_grad_value(g, 9, 5.0f);
    for (int i = 0; i < 9; i++)
        ck_assert_float_eq(g[i], want[i]);
    float h[] = {-10.0f, 7.0f};
    charrnn_clip_grad_value(h, 2, 0.0f); /* off */
    ck_assert_float_eq(h[0], -10.0f);
    ck_assert_float_eq(h[1], 7.0f);
}
END_TEST

/* One Adam and one RMSProp update against the formulas of torch.optim, in double. */
START_TEST(optimizer_updates)
{
    const float g[4] = {0.5f, -2.0f, 1e-3f, 0.0f};
    float p[4] = {1.0f, 1.0f, 1.0f, 1.0f}, m[4] = {0.1f, 0.0f, 0.0f, 0.2f},
          v[4] = {0.01f, 0.0f, 0.0f, 0.04f};
    charrnn_optim_config a = charrnn_optim_defaults(CHARRNN_OPT_ADAM);
    ck_assert_float_eq(a.beta1, 0.9f);
    ck_assert_float_eq(a.beta2, 0.999f);
    const uint64_t step = 3;
    charrnn_optim_update(&a, p, g, m, v, 4, 0.01f, step);
    const double m0[4] = {0.1, 0, 0, 0.2}, v0[4] = {0.01, 0, 0, 0.04};
    for (int i = 0; i < 4; i++) {
        double mm = 0.9 * m0[i] + 0.1 * g[i], vv = 0.999 * v0[i] + 0.001 * (double)g[i] * g[i];
        double want =
            1.0 - 0.01 * (mm / (1 - pow(0.9, 3))) / (sqrt(vv) / sqrt(1 - pow(0.999, 3)) + 1e-8);
        ck_assert_double_eq_tol(p[i], want, 1e-6); /* float32 arithmetic on O(1) values */
        ck_assert_double_eq_tol(m[i], mm, 1e-7);
    }
    charrnn_optim_config r = charrnn_optim_defaults(CHARRNN_OPT_RMSPROP);
    ck_assert_float_eq(r.alpha, 0.95f);
    float q[4] = {1.0f, 1.0f, 1.0f, 1.0f}, w[4] = {0.01f, 0.0f, 0.0f, 0.04f};
    charrnn_optim_update(&r, q, g, NULL, w, 4, 0.01f, 1);
    for (int i = 0; i < 4; i++) {
        double vv = 0.95 * v0[i] + 0.05 * (double)g[i] * g[i];
        ck_assert_double_eq_tol(q[i], 1.0 - 0.01 * g[i] / (sqrt(vv) + 1e-8), 1e-6);
    }
}
END_TEST

int main(void)
{
    openblas_set_num_threads(1);
    Suite *s = suite_create("vocab");
    TCase *u = tcase_create("utf8");
    tcase_add_test(u, utf8_decode_valid);
    tcase_add_test(u, utf8_decode_rejects);
    tcase_add_test(u, utf8_round_trip_exhaustive);
    suite_add_tcase(s, u);
    TCase *v = tcase_create("vocab");
    tcase_add_test(v, vocab_sorted_code_points);
    tcase_add_test(v, vocab_ascii_is_bytes);
    tcase_add_test(v, vocab_bom_and_line_endings);
    tcase_add_test(v, vocab_invalid_utf8_names_offset);
    tcase_add_test(v, vocab_encode_names_unknown);
    tcase_add_test(v, vocab_json_round_trip);
    tcase_add_test(v, vocab_from_codepoints_rejects);
    suite_add_tcase(s, v);
    TCase *d = tcase_create("data");
    tcase_add_test(d, corpus_errors);
    tcase_add_test(d, corpus_load_and_split);
    tcase_add_test(d, sha256_vectors);
    suite_add_tcase(s, d);
    TCase *sm = tcase_create("sampler");
    tcase_add_test(sm, sampler_seeds);
    tcase_add_test(sm, sampler_greedy_is_argmax);
    tcase_add_test(sm, sampler_stop_strings);
    tcase_add_test(sm, sampler_rejects);
    tcase_add_test(sm, sampler_batch_invariance);
    suite_add_tcase(s, sm);
    TCase *o = tcase_create("optim");
    tcase_add_test(o, lr_schedule);
    tcase_add_test(o, clip_grad_value);
    tcase_add_test(o, optimizer_updates);
    suite_add_tcase(s, o);
    return run_suite(s);
}
