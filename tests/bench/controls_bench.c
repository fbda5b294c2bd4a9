/* The per-step cost of the generation controls: STREAMS streams stepped
 * together through charrnn_infer_step, plain, under a regex ([a-z ,.\n]*, a
 * mask per step) and with the penalties (repetition, presence and
 * frequency over a window of 64), in interleaved rounds (each round steps
 * every mode STEPS times, in turn) so that a shared machine's drift hits all
 * three alike. Prints the median microseconds per step of each mode and the
 * ratios to plain, one JSON line. CPU time of the stepping thread: on a
 * shared machine wall time mostly measures the neighbours.
 *
 * usage: controls_bench CHECKPOINT [ROUNDS] [STREAMS] [STEPS]   (15, 1, 2000) */
#include "charrnn/checkpoint.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PLAIN, REGEX, PENALTY, MODES, MAX_STREAMS = 64, MAX_ROUNDS = 201 };
static const char *const names[MODES] = {"plain", "regex", "penalties"};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    tool_usage(argc >= 2, "%s CHECKPOINT [ROUNDS] [STREAMS] [STEPS]", argv[0]);
    int rounds = argc > 2 ? atoi(argv[2]) : 15, n = argc > 3 ? atoi(argv[3]) : 1;
    int steps = argc > 4 ? atoi(argv[4]) : 2000;
    if (rounds < 1 || rounds > MAX_ROUNDS || n < 1 || n > MAX_STREAMS || steps < 1) {
        fprintf(stderr, "ROUNDS 1..%d, STREAMS 1..%d, STEPS >= 1\n", MAX_ROUNDS, MAX_STREAMS);
        return 2;
    }
    charrnn_model *m = tool_load(NULL, argv[1]);
    char err[CHARRNN_ERR_MAX];
    charrnn_stream *ss[MODES][MAX_STREAMS];
    for (int k = 0; k < MODES; k++)
        for (int i = 0; i < n; i++) {
            charrnn_sample_params p = charrnn_sample_defaults();
            p.prime = "the ", p.prime_len = 4;
            p.length = (size_t)1 << 40; /* never ends within the run */
            p.seed = (uint64_t)i + 1;
            if (k == REGEX)
                p.regex = "[a-z ,.\n]*";
            if (k == PENALTY)
                p.repetition_penalty = 1.3f, p.presence_penalty = 0.5f, p.frequency_penalty = 0.5f;
            if (charrnn_stream_create(m, &p, &ss[k][i], err, sizeof err))
                tool_fail(NULL, err);
        }
    static double us[MODES][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < MODES; k++) {
            double t0 = now();
            for (int s = 0; s < steps; s++)
                charrnn_infer_step(m, (size_t)n, ss[k]);
            us[k][r] = (now() - t0) * 1e6 / steps;
        }
    double med[MODES];
    for (int k = 0; k < MODES; k++) {
        qsort(us[k], (size_t)rounds, sizeof us[k][0], cmp_double);
        med[k] = us[k][rounds / 2];
    }
    printf("{\"streams\": %d, \"rounds\": %d, \"steps\": %d", n, rounds, steps);
    for (int k = 0; k < MODES; k++)
        printf(", \"%s_us_per_step\": %.2f", names[k], med[k]);
    printf(", \"regex_ratio\": %.3f, \"penalties_ratio\": %.3f}\n", med[REGEX] / med[PLAIN],
           med[PENALTY] / med[PLAIN]);
    for (int k = 0; k < MODES; k++)
        for (int i = 0; i < n; i++)
            charrnn_stream_free(ss[k][i]);
    charrnn_model_free(m);
    return 0;
}
