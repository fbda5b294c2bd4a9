/* One stream, as fast as it goes: chars/s (wall clock) of charrnn_infer_step
 * on a checkpoint with a step's rows split across HELPERS extra threads
 * (charrnn/rowsplit.h; 0 = the stepping thread alone), the bytes of weights a
 * step reads, and the resident memory the loaded model takes. Prints one
 * JSON line.
 *
 * usage: stream_bench CHECKPOINT [SECONDS] [HELPERS]   (default 3 s, 0) */
#define _GNU_SOURCE
#include "charrnn/checkpoint.h"
#include "charrnn/lowp.h"
#include "charrnn/rowsplit.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "tool.h"

#include <malloc.h>
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

/* VmRSS in bytes. */
static long rss(void)
{
    malloc_trim(0);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

/* Bytes one step reads: every multiplied matrix in its dtype (int8: and
 * its scales), the biases, one column of rnn.weight_ih_l0. */
static size_t step_bytes(const charrnn_model *m)
{
    size_t b = 0;
    for (int i = 0; i < m->num_tensors; i++) {
        const charrnn_tensor_info *t = &m->tensors[i];
        const charrnn_matrix *mat = charrnn_model_matrix(m, i);
        if (i == 0)
            b += t->shape[0] * 4;
        else if (!mat || m->dtype == CHARRNN_DTYPE_F32)
            b += t->numel * 4;
        else
            b += t->numel * (m->dtype == CHARRNN_DTYPE_BF16 ? 2 : 1) +
                (m->dtype == CHARRNN_DTYPE_INT8 ? t->shape[0] * 4 : 0);
    }
    return b;
}

static void *helper(void *rs)
{
    charrnn_rowsplit_help(rs);
    return NULL;
}

int main(int argc, char **argv)
{
    tool_usage(argc >= 2, "%s CHECKPOINT [SECONDS] [HELPERS]", argv[0]);
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    int helpers = argc > 3 ? atoi(argv[3]) : 0;
    char err[CHARRNN_ERR_MAX];
    long r0 = rss();
    charrnn_model *m = tool_load(NULL, argv[1]);
    long r1 = rss();
    charrnn_rowsplit *rs = helpers > 0 ? charrnn_rowsplit_create() : NULL;
    pthread_t th[64];
    if (rs) {
        charrnn_rowsplit_open(rs);
        for (int k = 0; k < helpers && k < 64; k++)
            pthread_create(&th[k], NULL, helper, rs);
        while (charrnn_rowsplit_helpers(rs) < helpers)
            sched_yield();
    }
    charrnn_sample_params p = charrnn_sample_defaults();
    p.length = 1000000000;
    p.seed = 1;
    charrnn_stream *s;
    if (charrnn_stream_create(m, &p, &s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char out[8];
    for (int k = 0; k < 64; k++) { /* warm up */
        charrnn_infer_step_split(m, 1, &s, rs);
        charrnn_stream_emit(s, out);
    }
    double t0 = now(), t1 = t0;
    long steps = 0;
    while (t1 - t0 < secs) {
        for (int k = 0; k < 32; k++, steps++) {
            charrnn_infer_step_split(m, 1, &s, rs);
            charrnn_stream_emit(s, out);
        }
        t1 = now();
    }
    if (rs) {
        charrnn_rowsplit_close(rs);
        for (int k = 0; k < helpers && k < 64; k++)
            pthread_join(th[k], NULL);
        charrnn_rowsplit_free(rs);
    }
    double cps = steps / (t1 - t0);
    size_t bytes = step_bytes(m);
    printf("{\"dtype\": \"%s\", \"layers\": %d, \"hidden\": %d, \"helpers\": %d, "
           "\"kernel\": \"%s\", \"chars_per_s\": %.1f, \"step_bytes\": %zu, "
           "\"gb_per_s\": %.2f, \"rss_model_bytes\": %ld}\n",
           charrnn_dtype_name(m->dtype), m->cfg.num_layers, m->cfg.hidden_size, helpers,
           charrnn_kernel_name(), cps, bytes, cps * (double)bytes / 1e9, r1 - r0);
    charrnn_stream_free(s);
    charrnn_model_free(m);
    return 0;
}
