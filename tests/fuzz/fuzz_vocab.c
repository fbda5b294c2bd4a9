/* libFuzzer harness: UTF-8 decoding, the vocabulary and the encoder
 * (model/core/vocab.c, model/vocab_json.c).
 *
 * The input is a training text: build its vocabulary; if that succeeds, every
 * character encodes, the JSON form round-trips to the same code points, and
 * decode/encode of each code point round-trips. If it fails, the message names
 * a byte offset. The input is also encoded against a small fixed vocabulary
 * (out-of-vocabulary messages with many characters) and parsed as the JSON
 * array form of a checkpoint's "vocab" metadata. */
#include "charrnn/status.h"
#include "charrnn/vocab.h"
#include "charrnn/vocab_json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static charrnn_vocab *fixed;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    static const char text[] = "abc \n\xc3\xa9\xf0\x9f\x98\x80";
    if (charrnn_vocab_build((const uint8_t *)text, sizeof text - 1, &fixed, err, sizeof err))
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    uint8_t *text = malloc(size ? size : 1); /* exact size: over-reads are reported */
    uint16_t *ids = malloc((size ? size : 1) * sizeof *ids);
    if (!text || !ids)
        abort();
    memcpy(text, data, size);

    charrnn_vocab *v = NULL;
    err[0] = '\0';
    int rc = charrnn_vocab_build(text, size, &v, err, sizeof err);
    if (rc == CHARRNN_OK) {
        size_t n = 0;
        if (charrnn_vocab_encode(v, text, size, 1, ids, &n, err, sizeof err) != CHARRNN_OK)
            abort(); /* every character of the text is in its vocabulary */
        size_t V = charrnn_vocab_size(v);
        if (V == 0 || V > CHARRNN_MAX_VOCAB || n == 0 || n > size)
            abort();
        for (size_t i = 0; i < n; i++)
            if (ids[i] >= V)
                abort();
        for (size_t i = 0; i < V; i++) {
            uint32_t cp = charrnn_vocab_codepoint(v, i), back = 0;
            if (i && cp <= charrnn_vocab_codepoint(v, i - 1))
                abort(); /* sorted, unique */
            if (charrnn_vocab_index(v, cp) != (int)i)
                abort();
            char buf[4];
            int k = charrnn_utf8_encode(cp, buf);
            if (k < 1 || k > 4 ||
                charrnn_utf8_decode((const uint8_t *)buf, (size_t)k, &back) != k || back != cp)
                abort();
        }
        char *json = charrnn_vocab_to_json(v);
        if (!json)
            abort();
        charrnn_vocab *w = NULL;
        if (charrnn_vocab_from_json(json, &w, err, sizeof err) != CHARRNN_OK)
            abort();
        if (charrnn_vocab_size(w) != V)
            abort();
        for (size_t i = 0; i < V; i++)
            if (charrnn_vocab_codepoint(w, i) != charrnn_vocab_codepoint(v, i))
                abort();
        charrnn_vocab_free(w);
        free(json);
        charrnn_vocab_free(v);
    } else {
        if (v || !err[0])
            abort(); /* nothing half-built; a message */
        if (rc == CHARRNN_EFORMAT && !strstr(err, "offset") && !strstr(err, "byte"))
            abort();
    }

    /* Against a fixed vocabulary: most characters are unknown. */
    size_t n = 0;
    err[0] = '\0';
    rc = charrnn_vocab_encode(fixed, text, size, 0, ids, &n, err, sizeof err);
    if (rc != CHARRNN_OK && !err[0])
        abort();
    if (rc == CHARRNN_OK && n > size)
        abort();
    if (strlen(err) >= sizeof err)
        abort();

    /* As the JSON array form. */
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    charrnn_vocab *j = NULL;
    err[0] = '\0';
    rc = charrnn_vocab_from_json(s, &j, err, sizeof err);
    if (rc == CHARRNN_OK) {
        size_t V = charrnn_vocab_size(j);
        for (size_t i = 1; i < V; i++)
            if (charrnn_vocab_codepoint(j, i) <= charrnn_vocab_codepoint(j, i - 1))
                abort();
    } else if (j || !err[0]) {
        abort();
    }
    charrnn_vocab_free(j);
    free(s);
    free(ids);
    free(text);
    return 0;
}
