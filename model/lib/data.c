/* Training text: mmap once, build the vocabulary, encode, split, batch. */
#include "charrnn/data.h"

#include "charrnn/status.h"
#include "charrnn/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int charrnn_corpus_load(const char *path, const charrnn_vocab *vocab, charrnn_corpus **out,
                        char *err, size_t errlen)
{
    *out = NULL;
    int fd;
    struct stat st;
    int rc0 = charrnn_file_open(path, 0, &fd, &st, err, errlen);
    if (rc0)
        return rc0;
    const size_t n = (size_t)st.st_size;
    if (n == 0) {
        close(fd);
        return charrnn_fail(err, errlen, CHARRNN_EINVAL, "%s is empty", path);
    }
    /* The text is mapped, never copied: the only resident copy made is the
     * uint16 encoding (2 bytes per character). */
    const uint8_t *text = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (text == MAP_FAILED)
        return charrnn_fail(err, errlen, CHARRNN_EIO, "cannot map %s: %s", path, strerror(errno));
    madvise((void *)text, n, MADV_SEQUENTIAL);
    charrnn_corpus *c = calloc(1, sizeof *c);
    int rc = c ? CHARRNN_OK : charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory");
    if (rc == CHARRNN_OK) {
        c->bytes = n;
        if (vocab) {
            rc = charrnn_vocab_copy(vocab, &c->vocab, err, errlen);
        } else {
            rc = charrnn_vocab_build(text, n, &c->vocab, err, errlen);
        }
    }
    if (rc == CHARRNN_OK && !(c->tokens = malloc(n * sizeof *c->tokens)))
        rc = charrnn_fail(err, errlen, CHARRNN_ENOMEM, "out of memory for %zu characters", n);
    if (rc == CHARRNN_OK)
        rc = charrnn_vocab_encode(c->vocab, text, n, 1, c->tokens, &c->n, err, errlen);
    if (rc == CHARRNN_OK && c->n == 0)
        rc = charrnn_fail(err, errlen, CHARRNN_EINVAL, "%s has no characters", path);
    if (rc == CHARRNN_OK) {
        charrnn_sha256_hex(text, n, c->sha256);
        uint16_t *shrunk = realloc(c->tokens, c->n * sizeof *c->tokens);
        if (shrunk)
            c->tokens = shrunk;
    }
    munmap((void *)text, n);
    if (rc != CHARRNN_OK) {
        charrnn_corpus_free(c);
        return rc == CHARRNN_ENOMEM ? rc : charrnn_err_prefix(err, errlen, rc, path);
    }
    *out = c;
    return CHARRNN_OK;
}

void charrnn_corpus_free(charrnn_corpus *c)
{
    if (!c)
        return;
    charrnn_vocab_free(c->vocab);
    free(c->tokens);
    free(c);
}

static void split_one(charrnn_split *s, const uint16_t *tok, size_t n, int B, int T)
{
    s->tok = tok, s->n = n, s->B = B, s->T = T;
    s->nbatches = n > 1 ? (n - 1) / ((size_t)B * T) : 0;
}

int charrnn_split_make(const charrnn_corpus *c, double train_frac, double val_frac, int B, int T,
                       charrnn_split out[3], char *err, size_t errlen)
{
    if (!(train_frac > 0.0 && train_frac <= 1.0) || !(val_frac >= 0.0) ||
        train_frac + val_frac > 1.0 + 1e-9)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "bad split: train_frac %g and val_frac %g must be > 0, >= 0 and sum "
                            "to at most 1",
                            train_frac, val_frac);
    size_t ntrain = (size_t)(train_frac * (double)c->n);
    size_t nval = (size_t)(val_frac * (double)c->n);
    if (ntrain + nval > c->n)
        nval = c->n - ntrain;
    split_one(&out[0], c->tokens, ntrain, B, T);
    split_one(&out[1], c->tokens + ntrain, nval, B, T);
    split_one(&out[2], c->tokens + ntrain + nval, c->n - ntrain - nval, B, T);
    if (out[0].nbatches == 0)
        return charrnn_fail(err, errlen, CHARRNN_ERANGE,
                            "the training split has %zu characters; one batch of %d x %d needs "
                            "at least %zu (use a smaller --batch-size/--seq-length or more data)",
                            ntrain, B, T, (size_t)B * T + 1);
    return CHARRNN_OK;
}

void charrnn_split_batch(const charrnn_split *s, size_t j, uint16_t *x, uint16_t *y)
{
    const size_t T = (size_t)s->T, B = (size_t)s->B, stream_len = s->nbatches * T;
    for (size_t b = 0; b < B; b++) {
        const uint16_t *src = s->tok + b * stream_len + j * T;
        for (size_t t = 0; t < T; t++) {
            x[t * B + b] = src[t];
            y[t * B + b] = src[t + 1];
        }
    }
}
