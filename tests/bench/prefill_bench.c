/* A cold prime, read two ways on one checkpoint: stepped one character at a
 * time (charrnn_infer_step, what every prime cost before the prefill) and
 * prefilled layer by layer (charrnn_stream_prefill), with a step's rows split
 * across HELPERS extra threads (0 = one thread). ROUNDS interleaved rounds,
 * medians, and the ratio; the two must end in the same state bytes (checked,
 * exit 1 otherwise). Prints one JSON line.
 *
 * usage: prefill_bench CHECKPOINT TEXT_FILE [CHARS] [HELPERS] [ROUNDS]
 *        (default 10000 characters of the file's start, 0 helpers, 5 rounds) */
#define _GNU_SOURCE
#include "charrnn/checkpoint.h"
#include "charrnn/lowp.h"
#include "charrnn/rowsplit.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *helper(void *rs)
{
    charrnn_rowsplit_help(rs);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Reads the prime but its last character one way; seconds, and the snapshot. */
static double read_prime(const charrnn_model *m, const charrnn_sample_params *p, int prefill,
                         charrnn_rowsplit *rs, float *snap)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_stream *s;
    if (charrnn_stream_create(m, p, &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    size_t n;
    charrnn_stream_prime_tokens(s, &n);
    double t0 = now();
    if (prefill)
        charrnn_stream_prefill_split(m, s, n, rs);
    else
        for (size_t i = 0; i + 1 < n; i++)
            charrnn_infer_step_split(m, 1, &s, rs);
    double t = now() - t0;
    charrnn_stream_snapshot(s, snap);
    charrnn_stream_free(s);
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CHECKPOINT TEXT_FILE [CHARS] [HELPERS] [ROUNDS]\n", argv[0]);
        return 2;
    }
    size_t chars = argc > 3 ? (size_t)atol(argv[3]) : 10000;
    int helpers = argc > 4 ? atoi(argv[4]) : 0, rounds = argc > 5 ? atoi(argv[5]) : 5;
    if (rounds < 1 || rounds > 100 || helpers < 0 || helpers > 64 || chars < 2) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    char err[CHARRNN_ERR_MAX];
    charrnn_model *m = NULL;
    if (charrnn_checkpoint_load(argv[1], &m, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    FILE *f = fopen(argv[2], "rb");
    char *text = malloc(4 * chars + 1);
    size_t len = 0, got = 0;
    if (!f || !text) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 1;
    }
    for (int c; got < chars && (c = fgetc(f)) != EOF;) { /* whole UTF-8 characters */
        text[len++] = (char)c;
        got += ((unsigned)c & 0xC0) != 0x80;
    }
    fclose(f);
    charrnn_sample_params p = charrnn_sample_defaults();
    p.prime = text, p.prime_len = len, p.length = 1;
    charrnn_rowsplit *rs = helpers > 0 ? charrnn_rowsplit_create() : NULL;
    pthread_t th[64];
    if (rs) {
        charrnn_rowsplit_open(rs);
        for (int k = 0; k < helpers; k++)
            pthread_create(&th[k], NULL, helper, rs);
        while (charrnn_rowsplit_helpers(rs) < helpers)
            sched_yield();
    }
    size_t nf = charrnn_snapshot_floats(m);
    float *a = malloc(nf * sizeof *a), *b = malloc(nf * sizeof *b);
    double ts[100], tp[100];
    int same = 1;
    for (int r = 0; r < rounds; r++) { /* alternate which goes first */
        if (r % 2) {
            tp[r] = read_prime(m, &p, 1, rs, b);
            ts[r] = read_prime(m, &p, 0, rs, a);
        } else {
            ts[r] = read_prime(m, &p, 0, rs, a);
            tp[r] = read_prime(m, &p, 1, rs, b);
        }
        same &= memcmp(a, b, nf * sizeof *a) == 0;
    }
    if (rs) {
        charrnn_rowsplit_close(rs);
        for (int k = 0; k < helpers; k++)
            pthread_join(th[k], NULL);
        charrnn_rowsplit_free(rs);
    }
    qsort(ts, (size_t)rounds, sizeof *ts, cmp);
    qsort(tp, (size_t)rounds, sizeof *tp, cmp);
    double ms = ts[rounds / 2] * 1e3, mp = tp[rounds / 2] * 1e3;
    printf("{\"dtype\": \"%s\", \"layers\": %d, \"hidden\": %d, \"chars\": %zu, \"helpers\": %d, "
           "\"kernel\": \"%s\", \"stepped_ms\": %.1f, \"prefill_ms\": %.1f, \"speedup\": %.2f, "
           "\"same_state\": %s}\n",
           charrnn_dtype_name(m->dtype), m->cfg.num_layers, m->cfg.hidden_size, got, helpers,
           charrnn_kernel_name(), ms, mp, ms / mp, same ? "true" : "false");
    free(a), free(b), free(text);
    charrnn_model_free(m);
    return same ? 0 : 1;
}
