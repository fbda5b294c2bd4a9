/* The training text: corpus loading, the split and the batches (data.h). */
#include "testutil.h"

#include "charrnn/data.h"

#include <string.h>
#include <unistd.h>

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
    charrnn_vocab *ab = text_vocab("ab", 2);
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

int main(void)
{
    RUN_TESTS("data", corpus_errors, corpus_load_and_split);
}
