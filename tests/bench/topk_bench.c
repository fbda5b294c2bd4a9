/* top_k / top_p cost at the vocabulary limit: milliseconds per batched
 * inference step on a 1x128 LSTM over 65,536 characters (random weights),
 * without any candidate selection (the reference) and with top_k / top_p,
 * side by side, in CPU time of this thread (the machine is shared).
 *
 * usage: topk_bench [SECONDS_PER_ROW] [STREAMS]   (default 2 s, 1 stream) */
#define _GNU_SOURCE
#include "charrnn/model.h"
#include "charrnn/rng.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "charrnn/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { V = 65536 };

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static charrnn_model *make_model(void)
{
    char err[CHARRNN_ERR_MAX];
    uint32_t *cps = malloc(V * sizeof *cps);
    if (!cps)
        return NULL;
    for (uint32_t i = 0; i < V; i++)
        cps[i] = 0x100 + i >= 0xD800 ? 0x100 + i + 0x800 : 0x100 + i;
    charrnn_vocab *v = NULL;
    int rc = charrnn_vocab_from_codepoints(cps, V, &v, err, sizeof err);
    free(cps);
    charrnn_config cfg = {CHARRNN_CELL_LSTM, V, 128, 1};
    charrnn_model *m = NULL;
    if (rc || charrnn_model_create(&cfg, v, &m, err, sizeof err)) {
        fprintf(stderr, "topk_bench: %s\n", err);
        return NULL;
    }
    charrnn_rng r;
    charrnn_rng_seed(&r, 1);
    for (size_t i = 0; i < m->num_params; i++)
        m->params[i] = 0.2f * (2.0f * charrnn_rng_uniform_f(&r) - 1.0f);
    return m;
}

/* Milliseconds of CPU per step of n streams with these parameters. */
static double ms_per_step(charrnn_model *m, int n, int top_k, float top_p, double secs)
{
    char err[CHARRNN_ERR_MAX], out[8];
    charrnn_stream **s = calloc((size_t)n, sizeof *s);
    charrnn_sample_params p = charrnn_sample_defaults();
    p.length = 1000000000;
    p.top_k = top_k;
    p.top_p = top_p;
    for (int i = 0; i < n; i++) {
        p.seed = (uint64_t)i + 1;
        if (!s || charrnn_stream_create(m, &p, &s[i], err, sizeof err)) {
            fprintf(stderr, "topk_bench: %s\n", s ? err : "out of memory");
            exit(1);
        }
    }
    double c0 = cpu_s(), c1 = c0;
    long steps = 0;
    while (c1 - c0 < secs) {
        charrnn_infer_step(m, (size_t)n, s);
        for (int i = 0; i < n; i++)
            charrnn_stream_emit(s[i], out);
        steps++;
        c1 = cpu_s();
    }
    for (int i = 0; i < n; i++)
        charrnn_stream_free(s[i]);
    free(s);
    return (c1 - c0) * 1e3 / (double)steps;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    int n = argc > 2 ? atoi(argv[2]) : 1;
    charrnn_model *m = make_model();
    if (!m)
        return 1;
    static const struct {
        const char *name;
        int top_k;
        float top_p;
    } rows[] = {{"top_k=1", 1, 1.0f},       {"top_k=40", 40, 1.0f},
                {"top_k=65536", V, 1.0f},   {"top_p=0.9", 0, 0.9f},
                {"top_p=0.999", 0, 0.999f}, {"top_k=40 top_p=0.9", 40, 0.9f}};
    printf("1x128 LSTM, V=%d, %d stream(s), CPU ms per step\n", V, n);
    printf("%-20s %12s %12s %8s\n", "parameters", "plain ms", "with ms", "ratio");
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        /* The reference is measured next to each row: the load may change. */
        double plain = ms_per_step(m, n, 0, 1.0f, secs);
        double with = ms_per_step(m, n, rows[r].top_k, rows[r].top_p, secs);
        printf("%-20s %12.3f %12.3f %8.2f\n", rows[r].name, plain, with, with / plain);
        fflush(stdout);
    }
    charrnn_model_free(m);
    return 0;
}
