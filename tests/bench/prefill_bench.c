/* A cold prime, read four ways on one checkpoint: stepped one character at a
 * time (charrnn_infer_step, what every prime cost before the prefill) and
 * prefilled layer by layer (charrnn_stream_prefill), each on one thread and,
 * with HELPERS > 0, with the rows of every product split across HELPERS extra
 * threads (charrnn_infer_step_split / charrnn_stream_prefill_split; the
 * daemon's path for a lone stream). The helpers exist only while a split
 * reading runs, so a one-thread reading has the other cores to itself.
 * ROUNDS interleaved rounds (each round in another order), medians, and the
 * ratios; all must end in the same state bytes (checked, exit 1 otherwise).
 * A way reads the prime in pieces of 64 characters (the prefill's block),
 * each timed: besides the median of whole readings ("*_ms"), "*_best_ms" is
 * the sum over the pieces of each piece's fastest round, what the reading
 * costs when no other program takes the cores (on a shared machine a
 * neighbour's burst then spoils a piece of one round, not the figure).
 * Prints one JSON line.
 *
 * usage: prefill_bench CHECKPOINT TEXT_FILE [CHARS] [HELPERS] [ROUNDS]
 *        (default 10000 characters of the file's start, 0 helpers, 5 rounds) */
#define _GNU_SOURCE
#include "charrnn/checkpoint.h"
#include "charrnn/lowp.h"
#include "charrnn/rowsplit.h"
#include "charrnn/sampler.h"
#include "charrnn/status.h"
#include "tool.h"

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

enum { PIECE = 64, MAX_PIECES = 4096 };

/* Reads the prime but its last character one way, through `helpers` extra
 * threads when helpers > 0; seconds, each piece's seconds, and the snapshot. */
static double read_prime(const charrnn_model *m, const charrnn_sample_params *p, int prefill,
                         int helpers, double *piece, float *snap)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_stream *s;
    charrnn_rowsplit *rs = helpers > 0 ? charrnn_rowsplit_create() : NULL;
    if (charrnn_stream_create(m, p, &s, err, sizeof err) || (helpers > 0 && !rs)) {
        fprintf(stderr, "cannot create the stream or the split\n");
        exit(1);
    }
    pthread_t th[64];
    if (rs) {
        charrnn_rowsplit_open(rs);
        for (int k = 0; k < helpers; k++)
            pthread_create(&th[k], NULL, helper, rs);
        while (charrnn_rowsplit_helpers(rs) < helpers)
            sched_yield();
    }
    size_t n;
    charrnn_stream_prime_tokens(s, &n);
    double t0 = now(), tp = t0;
    for (size_t i = 0, k = 0; i + 1 < n; i += PIECE, k++) {
        size_t todo = n - 1 - i < PIECE ? n - 1 - i : PIECE;
        if (prefill)
            charrnn_stream_prefill_split(m, s, todo, rs);
        else
            for (size_t j = 0; j < todo; j++)
                charrnn_infer_step_split(m, 1, &s, rs);
        double tn = now();
        piece[k] = tn - tp, tp = tn;
    }
    double t = now() - t0;
    if (rs) {
        charrnn_rowsplit_close(rs);
        for (int k = 0; k < helpers; k++)
            pthread_join(th[k], NULL);
        charrnn_rowsplit_free(rs);
    }
    charrnn_stream_snapshot(s, snap);
    charrnn_stream_free(s);
    return t;
}

/* Tokens of p's prime. */
static size_t len_tokens(const charrnn_model *m, const charrnn_sample_params *p)
{
    char err[CHARRNN_ERR_MAX];
    charrnn_stream *s;
    size_t n = 0;
    if (charrnn_stream_create(m, p, &s, err, sizeof err) == 0) {
        charrnn_stream_prime_tokens(s, &n);
        charrnn_stream_free(s);
    }
    return n;
}

int main(int argc, char **argv)
{
    tool_usage(argc >= 3, "%s CHECKPOINT TEXT_FILE [CHARS] [HELPERS] [ROUNDS]", argv[0]);
    size_t chars = argc > 3 ? (size_t)atol(argv[3]) : 10000;
    int helpers = argc > 4 ? atoi(argv[4]) : 0, rounds = argc > 5 ? atoi(argv[5]) : 5;
    if (rounds < 1 || rounds > 100 || helpers < 0 || helpers > 64 || chars < 2 ||
        chars > (size_t)PIECE * MAX_PIECES) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    charrnn_model *m = tool_load(NULL, argv[1]);
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
    /* The ways: stepped, prefilled; then the same through the helpers. */
    enum { WAYS = 4 };
    static const char *names[WAYS] = {"stepped_ms", "prefill_ms", "stepped_split_ms",
                                      "prefill_split_ms"};
    const int ways = helpers > 0 ? WAYS : 2;
    size_t nf = charrnn_snapshot_floats(m);
    float *ref = malloc(nf * sizeof *ref), *snap = malloc(nf * sizeof *snap);
    double t[WAYS][100], med[WAYS], best[WAYS] = {0}, *piece = malloc(MAX_PIECES * sizeof *piece);
    static double fastest[WAYS][MAX_PIECES];
    const size_t npieces = (len_tokens(m, &p) + PIECE - 2) / PIECE;
    int same = 1;
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < ways; k++) { /* each round starts one way further */
            int w = (k + r) % ways, first = r == 0 && k == 0;
            t[w][r] = read_prime(m, &p, w % 2, w >= 2 ? helpers : 0, piece, first ? ref : snap);
            same &= first || memcmp(ref, snap, nf * sizeof *ref) == 0;
            for (size_t i = 0; i < npieces; i++)
                fastest[w][i] = r == 0 || piece[i] < fastest[w][i] ? piece[i] : fastest[w][i];
        }
    for (int w = 0; w < ways; w++)
        for (size_t i = 0; i < npieces; i++)
            best[w] += fastest[w][i] * 1e3;
    printf("{\"dtype\": \"%s\", \"layers\": %d, \"hidden\": %d, \"chars\": %zu, \"helpers\": %d, "
           "\"kernel\": \"%s\"",
           charrnn_dtype_name(m->dtype), m->cfg.num_layers, m->cfg.hidden_size, got, helpers,
           charrnn_kernel_name());
    for (int w = 0; w < ways; w++) {
        qsort(t[w], (size_t)rounds, sizeof **t, cmp);
        med[w] = t[w][rounds / 2] * 1e3;
        printf(", \"%s\": %.1f", names[w], med[w]);
    }
    for (int w = 0; w < ways; w++)
        printf(", \"%.*s_best_ms\": %.1f", (int)(strlen(names[w]) - 3), names[w], best[w]);
    /* speedup: the prefill against stepping, both on one thread; the split
     * prefill against each of the other three ways. */
    printf(", \"speedup\": %.2f", med[0] / med[1]);
    if (ways == WAYS)
        printf(", \"split_vs_stepped\": %.2f, \"split_vs_stepped_split\": %.2f, "
               "\"split_vs_prefill\": %.2f",
               med[0] / med[3], med[2] / med[3], med[1] / med[3]);
    printf(", \"best_speedup\": %.2f", best[0] / best[1]);
    if (ways == WAYS)
        printf(", \"best_split_vs_stepped\": %.2f, \"best_split_vs_stepped_split\": %.2f, "
               "\"best_split_vs_prefill\": %.2f",
               best[0] / best[3], best[2] / best[3], best[1] / best[3]);
    printf(", \"same_state\": %s}\n", same ? "true" : "false");
    free(ref), free(snap), free(text), free(piece);
    charrnn_model_free(m);
    return same ? 0 : 1;
}
