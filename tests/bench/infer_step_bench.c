/* Inference-step micro benchmark: stream-steps per second of
 * charrnn_infer_step on a checkpoint, for several batch sizes, timed in CPU
 * time of this thread (the machine is shared; wall time is printed too).
 * Each size runs twice: plain sampling, then with log-probabilities and the
 * top 5 alternatives recorded per character (what /sample's logprobs, /v1 and
 * the playground ask for), so their cost is read side by side.
 *
 * usage: infer_step_bench CHECKPOINT [SECONDS_PER_SIZE] [N...]   (default 2 s; 1 4 16 64) */
#define _GNU_SOURCE
#include "charrnn/checkpoint.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    tool_usage(argc >= 2, "%s CHECKPOINT [SECONDS] [N...]", argv[0]);
    char err[CHARRNN_ERR_MAX];
    charrnn_model *m = tool_load(NULL, argv[1]);
    double secs = argc > 2 ? atof(argv[2]) : 2.0;
    int def[] = {1, 4, 16, 64}, nsz = argc > 3 ? argc - 3 : 4;
    printf("%-8s %-9s %14s %14s %12s\n", "streams", "logprobs", "steps/s(cpu)", "chars/s(cpu)",
           "chars/s(wall)");
    for (int z = 0; z < 2 * nsz; z++) {
        int n = argc > 3 ? atoi(argv[3 + z / 2]) : def[z / 2], lp = z % 2;
        charrnn_stream **s = calloc((size_t)n, sizeof *s);
        charrnn_sample_params p = charrnn_sample_defaults();
        p.length = 1000000000;
        p.logprobs = lp, p.top_logprobs = 5;
        for (int i = 0; i < n; i++) {
            p.seed = (uint64_t)i + 1;
            if (charrnn_stream_create(m, &p, &s[i], err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
        }
        double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC), c1 = c0;
        long steps = 0;
        char out[8];
        while (c1 - c0 < secs) {
            for (int k = 0; k < 16; k++, steps++) {
                if (charrnn_infer_step(m, (size_t)n, s)) {
                    fprintf(stderr, "charrnn_infer_step failed\n");
                    return 1;
                }
                for (int i = 0; i < n; i++) {
                    charrnn_stream_emit(s[i], out);
                    charrnn_logprob r;
                    charrnn_stream_logprob(s[i], &r);
                }
            }
            c1 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        }
        double w1 = clock_s(CLOCK_MONOTONIC);
        printf("%-8d %-9s %14.0f %14.0f %12.0f\n", n, lp ? "top 5" : "off", steps / (c1 - c0),
               steps * n / (c1 - c0), steps * n / (w1 - w0));
        fflush(stdout);
        for (int i = 0; i < n; i++)
            charrnn_stream_free(s[i]);
        free(s);
    }
    charrnn_model_free(m);
    return 0;
}
