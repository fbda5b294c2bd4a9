/* libFuzzer harness: the safetensors reader and checkpoint validation
 * (charrnn_st_parse + charrnn_checkpoint_model), then a few sampling steps on
 * whatever model is accepted, so a validation gap (a shape or size the loader
 * lets through) becomes an out-of-bounds access ASan reports.
 *
 * Input modes (first byte):
 *   even: the rest is a file, byte for byte.
 *   odd:  the rest is a file whose 8-byte header length is recomputed as the
 *         length of the JSON object that follows it, so that mutations which
 *         grow or shrink the header still reach the JSON and tensor checks. */
#include "charrnn/checkpoint.h"
#include "charrnn/safetensors.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Length of the JSON object starting at p (braces outside strings), or n. */
static size_t object_len(const uint8_t *p, size_t n)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{') {
            depth++;
        } else if (c == '}' && --depth == 0) {
            return i + 1;
        }
    }
    return n;
}

static void check_model(const charrnn_model *m)
{
    /* A few greedy and random steps, with and without a prime. */
    size_t V = charrnn_vocab_size(m->vocab);
    if (V == 0 || (int)V != m->cfg.vocab_size)
        abort();
    char prime[8];
    int k = charrnn_utf8_encode(charrnn_vocab_codepoint(m->vocab, V - 1), prime);
    for (int t = 0; t < 2; t++) {
        charrnn_sample_params p = charrnn_sample_defaults();
        p.length = 3;
        p.temperature = t ? 1.0f : 0.0f;
        p.prime = t ? prime : NULL;
        p.prime_len = t ? (size_t)k : 0;
        p.seed = 7;
        charrnn_stream *s = NULL;
        char err[256];
        if (charrnn_stream_create(m, &p, &s, err, sizeof err) != CHARRNN_OK)
            abort();
        char out[8];
        while (!charrnn_stream_done(s)) {
            if (charrnn_infer_step(m, 1, &s))
                abort();
            charrnn_stream_emit(s, out);
        }
        charrnn_stream_free(s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, n);
    if ((data[0] & 1) && n >= 8) {
        uint64_t h = object_len(buf + 8, n - 8);
        for (int i = 0; i < 8; i++)
            buf[i] = (uint8_t)(h >> (8 * i));
    }
    charrnn_st_file *f = NULL;
    char err[1024];
    err[0] = '\0';
    int rc = charrnn_st_parse(buf, n, &f, err, sizeof err);
    free(buf); /* the file keeps its own copy */
    if (rc != CHARRNN_OK) {
        if (f || !err[0])
            abort();
        return 0;
    }
    /* Every tensor the reader returns lies inside its buffer (ASan checks the reads). */
    volatile float sink = 0;
    for (size_t i = 0; i < charrnn_st_count(f); i++) {
        const charrnn_st_tensor *t = charrnn_st_at(f, i);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            numel *= t->shape[d];
        if (numel)
            sink += t->data[0] + t->data[numel - 1];
        if (charrnn_st_get(f, t->name) != t)
            abort();
    }
    (void)sink;
    charrnn_model *m = NULL;
    err[0] = '\0';
    rc = charrnn_checkpoint_model(f, &m, err, sizeof err);
    if (rc == CHARRNN_OK) {
        check_model(m);
        charrnn_model_free(m);
    } else if (m || !err[0]) {
        abort();
    }
    charrnn_st_free(f);
    return 0;
}
