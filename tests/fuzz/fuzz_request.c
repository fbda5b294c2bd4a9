/* libFuzzer harness: POST /sample bodies -> sampling parameters
 * (server/sample_request.c), then a short generation with those parameters on a small
 * fixed model, so that whatever the parser accepts is also accepted safely by
 * the sampler.
 *
 * Invariants checked beyond "no sanitizer report": an accepted request is in
 * range (length 1..max_length, temperature 0..10, top_p (0,1], top_k >= 0, at
 * most CHARRNN_MAX_STOP stop strings of 1..CHARRNN_MAX_STOP_LEN bytes); a
 * rejected one is a 4xx with a message, and its message and param make a
 * valid UTF-8 JSON body; stop strings are valid UTF-8; the generated text
 * (cut at a stop or not) is valid UTF-8 and no longer than asked. And the request scanner (request_members, which the
 * \u0000 and seed checks read) sees the members cJSON sees: same count, same
 * keys, values of the same kind and, where they can be compared as text, the
 * same value. */
#include "charrnn/sampler.h"
#include "charrnn/vocab.h"
#include "config.h"
#include "fuzz_json.h"
#include "fuzz_model.h"
#include "sample_request.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static serve_config cfg;
static charrnn_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_config(&cfg, "64");
    model = fuzz_model(CHARRNN_CELL_LSTM, 2);
    return 0;
}

/* 1 if the quoted source text q (with its quotes) is the string s: only
 * checked for text without escapes or NUL bytes (those cJSON rewrites). */
static int same_text(span q, const char *s)
{
    if (q.n < 2 || q.p[0] != '"' || q.p[q.n - 1] != '"')
        return 0;
    const char *t = q.p + 1;
    size_t n = q.n - 2;
    if (memchr(t, '\\', n) || memchr(t, '\0', n))
        return 1;
    return strlen(s) == n && !memcmp(t, s, n);
}

static int same_kind(span v, const cJSON *c)
{
    if (v.n == 0)
        return 0;
    char k = v.p[0];
    if (cJSON_IsString(c))
        return k == '"' && same_text(v, c->valuestring);
    if (cJSON_IsObject(c))
        return k == '{' && v.p[v.n - 1] == '}';
    if (cJSON_IsArray(c))
        return k == '[' && v.p[v.n - 1] == ']';
    if (cJSON_IsTrue(c))
        return v.n == 4 && !memcmp(v.p, "true", 4);
    if (cJSON_IsFalse(c))
        return v.n == 5 && !memcmp(v.p, "false", 5);
    if (cJSON_IsNull(c))
        return v.n == 4 && !memcmp(v.p, "null", 4);
    if (cJSON_IsNumber(c)) {
        char buf[64];
        if (v.n >= sizeof buf)
            return 1; /* long numbers: the kind was checked by cJSON */
        memcpy(buf, v.p, v.n);
        buf[v.n] = '\0';
        char *e;
        double d = strtod(buf, &e);
        return *e == '\0' && d == c->valuedouble;
    }
    return 0;
}

static void check_members(const char *body, size_t size)
{
    enum { MAX = 64 };
    cJSON *root = cJSON_ParseWithLengthOpts(body, size, NULL, 0);
    if (!root)
        return;
    if (cJSON_IsObject(root)) {
        static request_member m[MAX];
        size_t n = request_members(body, size, m, MAX), i = 0;
        for (const cJSON *c = root->child; c && i < MAX; c = c->next, i++)
            if (i >= n || !same_text(m[i].key, c->string) || !same_kind(m[i].value, c))
                abort();
        if (n != i)
            abort();
    }
    cJSON_Delete(root);
}

typedef struct sink {
    size_t bytes, calls;
    int bad;
} sink;

static int collect(void *ctx, const char *bytes, size_t len)
{
    sink *s = ctx;
    s->bytes += len;
    s->calls++;
    if (!utf8_valid(bytes, len))
        s->bad = 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly size bytes, not NUL-terminated: an over-read is an ASan report. */
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    check_members(body, size);
    sample_request r;
    api_error e;
    memset(&e, 0, sizeof e);
    if (sample_request_parse(body, size, &cfg, &r, &e) != 0) {
        fuzz_check_error(&e);
        free(body);
        return 0;
    }
    free(body);
    if (r.p.length < 1 || (long)r.p.length > cfg.max_length)
        abort();
    if (!(r.p.temperature >= 0 && r.p.temperature <= 10))
        abort();
    if (!(r.p.top_p > 0 && r.p.top_p <= 1) || r.p.top_k < 0)
        abort();
    if (r.p.n_stop > CHARRNN_MAX_STOP || !r.prime || r.p.prime != r.prime ||
        strlen(r.prime) != r.p.prime_len)
        abort();
    for (size_t i = 0; i < r.p.n_stop; i++) {
        size_t n = strlen(r.stop[i]);
        if (n < 1 || n > CHARRNN_MAX_STOP_LEN || !utf8_valid(r.stop[i], n))
            abort(); /* only a valid stop is sure to cut between characters */
    }
    const charrnn_sample_params p = r.p;
    charrnn_stream *s = NULL;
    char err[512];
    if (charrnn_stream_create(model, &p, &s, err, sizeof err) == 0) {
        sink k = {0, 0, 0};
        if (charrnn_sample_run(s, model, collect, &k) || k.bad ||
            charrnn_stream_generated_chars(s) > r.p.length)
            abort();
        charrnn_stream_free(s);
    } else if (!err[0]) {
        abort(); /* a rejection always says why */
    }
    sample_request_clear(&r);
    return 0;
}
